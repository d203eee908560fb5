"""Checkpoints at least every interval; the integrity check when the runtime opens the records."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
from custos_testkit import ORIGIN

from hmi.bootstrap import open_services
from hmi.core.clock import FakeClock
from hmi.store.db import Store
from hmi.store.tables import AUDIT


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def checkpoints(store: Store) -> list[tuple]:
    return store.query("SELECT seq, heads FROM checkpoints ORDER BY seq")


def test_periodic_checkpoint_only_when_records_were_added(tmp_path: Path):
    clock = FakeClock()
    store = Store.create(tmp_path / "d", clock=clock, checkpoint_interval=60)
    try:
        store.append(AUDIT, {"action": "a", "outcome": "done"})
        assert checkpoints(store) == []
        clock.advance(61)
        assert wait_for(lambda: len(checkpoints(store)) == 1)
        assert "audit_records:1:" in checkpoints(store)[0][1]
        clock.advance(61)  # nothing new: no new checkpoint
        store.append(AUDIT, {"action": "b", "outcome": "done"})
        assert wait_for(lambda: len(checkpoints(store)) == 2)
        anchors = tmp_path / "d" / "anchors.log"
        assert wait_for(lambda: len(anchors.read_text().splitlines()) == 2)
    finally:
        store.close()


async def test_startup_check_records_a_broken_chain_and_notifies(services, config_dir, clock):
    data = services.store.data_dir.root
    services.close()
    con = duckdb.connect(str(data / "hmi.duckdb"))
    con.execute("DROP TRIGGER audit_records_no_update ON audit_records")
    con.execute("UPDATE audit_records SET reason = 'rewritten' WHERE seq = 1")
    con.close()
    reopened = open_services(data, config_dir, clock=clock, origin=ORIGIN)
    try:
        assert reopened.integrity is not None and not reopened.integrity.ok
        events = reopened.store.query(
            "SELECT detail FROM security_events WHERE event = 'integrity_check_failed'"
        )
        assert len(events) == 1 and "audit_records seq 1" in events[0][0]
        notes = reopened.store.query("SELECT audience FROM notifications WHERE kind='integrity'")
        assert sorted(n[0] for n in notes) == ["admin", "qa"]
    finally:
        reopened.close()
