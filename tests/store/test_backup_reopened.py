"""A reopened store (the runtime's case) can still be backed up after rows were updated:
opening must not leave a read pending on the base connection, which keeps DuckDB from
checkpointing once any row is updated (REC-3, OPS-3)."""

from __future__ import annotations

from pathlib import Path

from hmi.core.clock import FakeClock
from hmi.store import backup as bk
from hmi.store.db import Store
from hmi.store.restore import restore
from hmi.store.verify import verify_data_dir


def test_a_reopened_store_backs_up_after_an_update(filled_dir: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    with Store.open(filled_dir, clock=clock) as store:
        store.write(
            lambda tx: tx.execute(
                "INSERT INTO schema_meta VALUES ('probe', '1') ON CONFLICT DO NOTHING"
            )
        )
        store.write(lambda tx: tx.execute("UPDATE schema_meta SET value = '2' WHERE key = 'probe'"))
        taken = bk.backup(store, tmp_path / "backups", by="test", now=clock.now())
    restored = tmp_path / "restored"
    assert restore(taken.path, restored, filled_dir / "keys").ok
    assert verify_data_dir(restored).ok
