"""Backups and restore against real DuckDB files; the killed backup is a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hmi.core.clock import FakeClock
from hmi.core.errors import BackupError
from hmi.store import backup as bk
from hmi.store import restore as rs
from hmi.store.db import Store
from hmi.store.key_escrow import SEALED_KEYS_FILE
from hmi.store.keys import HMAC_KEY_FILE, SIGNING_KEY_FILE
from hmi.store.tables import AUDIT
from hmi.store.verify import verify_data_dir
from hmi.store.verify_images import file_sha256
from tests.store.conftest import drop_guards

REPO = Path(__file__).resolve().parents[2]


def take(data: Path, dest: Path, clock: FakeClock, keep: int | None = None) -> Path:
    with Store.open(data, clock=clock) as store:
        return bk.backup(store, dest, by="test", now=clock.now(), keep=keep).path


def test_round_trip_verifies_and_has_no_private_key(
    filled_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    path = take(filled_dir, tmp_path / "backups", clock)
    manifest = json.loads((path / bk.MANIFEST).read_text())
    assert "hmi.duckdb" in manifest["files"] and "anchors.log" in manifest["files"]
    assert any(name.startswith("images/") for name in manifest["files"])
    assert manifest["chain_heads"][AUDIT.name]["seq"] > 0
    assert not (path / "keys" / HMAC_KEY_FILE).exists()
    assert not (path / "keys" / SIGNING_KEY_FILE).exists()

    restored = tmp_path / "restored"
    report = rs.restore(path, restored, filled_dir / "keys")
    assert report.ok
    assert verify_data_dir(restored).ok
    with Store.open(restored, clock=clock) as store:
        assert store.heads[AUDIT.name].seq == manifest["chain_heads"][AUDIT.name]["seq"]


def test_backup_while_the_store_is_writing(data_root: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    with Store.create(data_root, clock=clock) as store:
        futures = [store.submit(lambda tx, i=i: tx.append(AUDIT, _audit(i))) for i in range(200)]
        result = bk.backup(store, tmp_path / "b", by="test", now=clock.now())
        for f in futures:
            f.result(timeout=30)
        keys = store.data_dir.keys
    rs.verify_backup(result.path, keys)


def _audit(i: int) -> dict[str, object]:
    return {
        "ts": FakeClock().now(),
        "actor_id": "u",
        "terminal_id": "t",
        "source": "s",
        "action": f"a{i}",
        "outcome": "done",
    }


def test_keep_removes_the_oldest(filled_dir: Path, tmp_path: Path, clock: FakeClock) -> None:
    dest = tmp_path / "b"
    paths = []
    for _ in range(3):
        paths.append(take(filled_dir, dest, clock, keep=2))
        clock.advance(60)
    assert bk.complete_backups(dest) == paths[1:]


@pytest.fixture
def one_backup(filled_dir: Path, tmp_path: Path, clock: FakeClock) -> Path:
    return take(filled_dir, tmp_path / "backups", clock)


def test_tampered_file_is_refused_by_name(
    one_backup: Path, filled_dir: Path, tmp_path: Path
) -> None:
    anchors = one_backup / "anchors.log"
    anchors.write_bytes(anchors.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(BackupError, match=str(anchors)):
        rs.restore(one_backup, tmp_path / "new", filled_dir / "keys")
    assert not (tmp_path / "new").exists()


def test_tampered_image_is_refused_by_name(
    one_backup: Path, filled_dir: Path, tmp_path: Path
) -> None:
    image = next(p for p in sorted((one_backup / "images").rglob("*")) if p.is_file())
    image.write_bytes(image.read_bytes() + b"x")
    with pytest.raises(BackupError, match=str(image)):
        rs.restore(one_backup, tmp_path / "new", filled_dir / "keys")


def test_missing_file_is_refused_by_name(
    one_backup: Path, filled_dir: Path, tmp_path: Path
) -> None:
    (one_backup / "hmi.duckdb").unlink()
    with pytest.raises(BackupError, match=str(one_backup / "hmi.duckdb") + " is missing"):
        rs.restore(one_backup, tmp_path / "new", filled_dir / "keys")
    assert not (tmp_path / "new").exists()


def test_rewritten_manifest_is_still_refused(
    one_backup: Path, filled_dir: Path, tmp_path: Path
) -> None:
    """An attacker who edits a row and rewrites the manifest still fails the chains."""
    import duckdb

    db = one_backup / "hmi.duckdb"
    con = duckdb.connect(str(db))
    drop_guards(con)
    con.execute("UPDATE audit_records SET action = 'edited' WHERE seq = 1")
    con.close()
    manifest = json.loads((one_backup / bk.MANIFEST).read_text())
    for rel in list(manifest["files"]):
        p = one_backup / rel
        sha, size = file_sha256(p)
        manifest["files"][rel] = {"sha256": sha, "size": size}
    for extra in one_backup.glob("hmi.duckdb.wal"):
        sha, size = file_sha256(extra)
        manifest["files"][extra.name] = {"sha256": sha, "size": size}
    (one_backup / bk.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="audit_records seq 1"):
        rs.restore(one_backup, tmp_path / "new", filled_dir / "keys")


def test_restore_into_an_existing_directory_is_refused(
    one_backup: Path, filled_dir: Path, tmp_path: Path
) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(BackupError, match="already exists"):
        rs.restore(one_backup, existing, filled_dir / "keys")
    assert list(existing.iterdir()) == []


def test_wrong_keys_are_refused(one_backup: Path, tmp_path: Path, clock: FakeClock) -> None:
    Store.create(tmp_path / "other", clock=clock).close()
    with pytest.raises(BackupError, match="not the keys of this backup"):
        rs.restore(one_backup, tmp_path / "new", tmp_path / "other" / "keys")


KILLED_BACKUP = """
    import sys, threading
    from pathlib import Path
    from hmi.core.clock import FakeClock
    from hmi.store import backup as bk
    from hmi.store.db import Store

    copy = bk._copy

    def copy_then_stop_after_the_database(src, dst):
        copy(src, dst)
        print(dst, flush=True)
        if dst.name == "hmi.duckdb":
            threading.Event().wait()  # killed here, the database half copied into the backup

    bk._copy = copy_then_stop_after_the_database
    clock = FakeClock()
    clock.advance(3600)
    store = Store.open(Path(sys.argv[1]), clock=clock)
    bk.backup(store, Path(sys.argv[2]), by="test", now=clock.now())
"""


def test_killed_backup_leaves_previous_backup_and_database_intact(
    filled_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    dest = tmp_path / "backups"
    previous = take(filled_dir, dest, clock)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_BACKUP), str(filled_dir), str(dest)],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the backup did not reach the database copy"
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "backup exited"
            if line.strip().endswith("hmi.duckdb"):
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert bk.complete_backups(dest) == [previous]
    partial = [p for p in dest.iterdir() if p != previous]
    assert len(partial) == 1 and partial[0].name.startswith(bk.PARTIAL)
    with pytest.raises(BackupError, match="not a complete backup"):
        rs.restore(partial[0], tmp_path / "new", filled_dir / "keys")
    rs.verify_backup(previous, filled_dir / "keys")
    assert verify_data_dir(filled_dir).ok
    with Store.open(filled_dir, clock=clock) as store:
        store.append(AUDIT, _audit(1))
    assert verify_data_dir(filled_dir).ok
    shutil.rmtree(partial[0])


PASSPHRASE = "correct horse battery"


def test_sealed_private_keys_restore_without_the_keys_directory(
    filled_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with Store.open(filled_dir, clock=clock) as store:
        result = bk.backup(store, tmp_path / "b", by="test", now=clock.now(), passphrase=PASSPHRASE)
    assert result.private_keys and "sealed" in result.summary()
    manifest = json.loads((result.path / bk.MANIFEST).read_text())
    assert manifest["private_keys"] == "sealed"
    sealed = (result.path / "keys" / SEALED_KEYS_FILE).read_bytes()
    hmac_hex = (filled_dir / "keys" / HMAC_KEY_FILE).read_text().strip()
    assert hmac_hex.encode() not in sealed and b"PRIVATE KEY" not in sealed
    assert not (result.path / "keys" / HMAC_KEY_FILE).exists()

    with pytest.raises(BackupError, match="passphrase is wrong"):
        rs.restore(result.path, tmp_path / "wrong", passphrase="not the passphrase")
    assert not (tmp_path / "wrong").exists()
    with pytest.raises(BackupError, match="needs the backup passphrase"):
        rs.restore(result.path, tmp_path / "none")

    restored = tmp_path / "restored"
    assert rs.restore(result.path, restored, passphrase=PASSPHRASE).ok
    for name in (HMAC_KEY_FILE, SIGNING_KEY_FILE):
        assert (restored / "keys" / name).read_bytes() == (filled_dir / "keys" / name).read_bytes()
        assert (restored / "keys" / name).stat().st_mode & 0o777 == 0o600
    assert not (restored / "keys" / SEALED_KEYS_FILE).exists()
    assert verify_data_dir(restored).ok


def test_a_short_passphrase_makes_no_backup(
    filled_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    with (
        Store.open(filled_dir, clock=clock) as store,
        pytest.raises(BackupError, match="at least 12 characters"),
    ):
        bk.backup(store, tmp_path / "b", by="test", now=clock.now(), passphrase="short")
    assert bk.complete_backups(tmp_path / "b") == []
    assert [p for p in (tmp_path / "b").iterdir()] == []


def test_a_backup_without_sealed_keys_needs_the_keys_directory(
    one_backup: Path, tmp_path: Path
) -> None:
    with pytest.raises(BackupError, match="holds no private keys"):
        rs.restore(one_backup, tmp_path / "new", passphrase=PASSPHRASE)
    assert not (tmp_path / "new").exists()


def test_abandoned_partial_backups_are_removed_by_the_next_backup(
    filled_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    dest = tmp_path / "backups"
    old = dest / f"{bk.PARTIAL}{bk.PREFIX}20260101T000000000000Z"
    fresh = dest / f"{bk.PARTIAL}{bk.PREFIX}20260101T000001000000Z"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "hmi.duckdb").write_bytes(b"half a copy")
    hour_ago = time.time() - bk.STALE_PARTIAL_S - 60
    for path in (old, old / "hmi.duckdb"):
        os.utime(path, (hour_ago, hour_ago))

    with Store.open(filled_dir, clock=clock) as store:
        result = bk.backup(store, dest, by="test", now=clock.now())
    assert result.abandoned == (old,)
    assert "incomplete backups removed" in result.summary()
    assert not old.exists() and fresh.exists()
    assert bk.complete_backups(dest) == [result.path]
