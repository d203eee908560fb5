"""The record store: guard triggers, gap-free sequences, group commit, read-your-write,
reopening, refusals, key file modes, the single-writer lock and crash durability.

All against real DuckDB files; other processes are real subprocesses.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hmi.core.audit import Kind
from hmi.core.clock import FakeClock
from hmi.core.errors import DataDirectoryError, RecordError
from hmi.core.tags import Quality, TagChange
from hmi.records.images import ImageStore
from hmi.store import migrate
from hmi.store.anchors import parse_heads
from hmi.store.db import Appended, Store, WriteTx
from hmi.store.history import write_batch
from hmi.store.keys import HMAC_KEY_FILE, PUBLIC_KEY_FILE, SIGNING_KEY_FILE
from hmi.store.tables import AUDIT, CAPTURES, CHAINED_TABLES, ESIGNATURES, HISTORY_BATCHES
from hmi.store.verify import verify_data_dir

REPO = Path(__file__).resolve().parents[2]
ROWS: dict[str, dict[str, object]] = {
    "audit_records": {"action": "setpoint", "outcome": "ok"},
    "security_event_records": {"event": "login"},
    "qa_query_records": {"sql_text": "SELECT 1", "outcome": "ok", "row_count": 1},
}
GUARDED = [*CHAINED_TABLES, "checkpoints", "password_hashes"]


def audit_row(action: str = "setpoint", **extra: object) -> dict[str, object]:
    return {"action": action, "outcome": "ok", **extra}


def esig_row(n: int) -> dict[str, object]:
    return {
        "signature_id": f"sig-{n}",
        "signer_id": "qa1",
        "signer_name": "Quinn QA",
        "meaning": "approved",
        "reason": "release",
        "content": "{}",
        "content_digest": "0" * 64,
        "auth_mode": "password",
    }


def spec_row(table: str) -> dict[str, object]:
    """A plain row for a chained table this file has no special row for: one value per kind."""
    plain = {Kind.TEXT: "x", Kind.INT: 1, Kind.BOOL: True, Kind.BLOB: b"x"}
    now = datetime.now(UTC)
    return {
        name: now if kind is Kind.TIMESTAMP else plain[kind]
        for name, kind in CHAINED_TABLES[table].columns
        if name not in ("seq", "ts")
    }


def make_row(table: str) -> dict[str, object]:
    if table == ESIGNATURES.name:
        return esig_row(int(time.monotonic_ns()))
    return ROWS.get(table) or spec_row(table)


def append_one(store: Store, table: str) -> Appended:
    """One more row of ``table``; a history batch row goes in with its values."""
    if table == HISTORY_BATCHES.name:
        now = store.clock.now()
        return write_batch(store, [TagChange("T1", 1.5, Quality.GOOD, None, now, "device:plc1")])
    if table == CAPTURES.name:
        stored = ImageStore(store.data_dir.images).put(b"image of the reopened store", "png")
        fields = {"camera": "cam", "format": "png", "width": 1, "height": 1, "settings": "{}"}
        row = {**fields, "sha256": bytes.fromhex(stored.sha256), "size": stored.size}
        return store.append(table, row)
    return store.append(table, make_row(table))


def assert_verifies(root: Path) -> None:
    report = verify_data_dir(root)
    assert report.ok, [str(p) for p in report.problems]


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.01)


def python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Gate:
    """A job that holds the writer thread until released, so that jobs submitted
    meanwhile are all waiting in the queue when the writer takes its next batch."""

    def __init__(self, store: Store) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.future = store.submit(self._hold)
        assert self.started.wait(10), "the writer never started the gate job"

    def _hold(self, tx: WriteTx) -> None:
        self.started.set()
        assert self.release.wait(10)

    def open(self) -> None:
        self.release.set()
        self.future.result(timeout=10)


# -- guard triggers ---------------------------------------------------------------------


@pytest.fixture
def direct(filled_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A plain DuckDB connection to a filled, closed database (guards in place)."""
    con = duckdb.connect(str(filled_dir / "hmi.duckdb"))
    con.execute(
        "INSERT INTO password_hashes VALUES ('op1', 1, '$argon2id$v=19$m=8,t=1,p=1$x$y', "
        "now(), true)"
    )
    yield con
    con.close()


@pytest.mark.parametrize("table", GUARDED)
def test_guard_triggers_refuse_update_and_delete(
    direct: duckdb.DuckDBPyConnection, table: str
) -> None:
    before = direct.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    assert before, f"{table} should have rows for this test"
    column = "hash" if table == "password_hashes" else "ts"
    value = "'x'" if table == "password_hashes" else "now()"

    with pytest.raises(duckdb.ConstraintException, match="guard_refusals"):
        direct.execute(f"UPDATE {table} SET {column} = {value}")
    with pytest.raises(duckdb.ConstraintException, match="guard_refusals"):
        direct.execute(f"DELETE FROM {table}")
    with pytest.raises(duckdb.ConstraintException, match="guard_refusals"):
        direct.execute(f"DELETE FROM {table} WHERE false")  # even when nothing matches

    assert direct.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == before


def test_guard_triggers_refuse_through_the_running_store(store: Store) -> None:
    first = store.append(AUDIT, audit_row())

    with store.reader() as cur, pytest.raises(duckdb.ConstraintException):
        cur.execute("DELETE FROM audit_records")
    with pytest.raises(RecordError, match="not be written"):
        store.write(lambda tx: tx.execute("UPDATE audit_records SET reason = 'edited'"))

    assert store.query("SELECT seq, reason, digest FROM audit_records") == [
        (first.seq, None, first.digest)
    ]
    second = store.append(AUDIT, audit_row())  # the writer carries on after the refusal
    assert second.seq == 2
    store.close()
    assert_verifies(store.data_dir.root)


# -- sequences and group commit -------------------------------------------------------------


def test_seq_is_gap_free_under_concurrency(store: Store) -> None:
    def worker(n: int) -> list[int]:
        return [store.append(AUDIT, audit_row(f"t{n}-{i}")).seq for i in range(50)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        per_thread = list(pool.map(worker, range(20)))

    for seqs in per_thread:
        assert seqs == sorted(seqs)  # each caller sees its own rows in order
    assert sorted(s for seqs in per_thread for s in seqs) == list(range(1, 1001))
    stored = [seq for (seq,) in store.query("SELECT seq FROM audit_records ORDER BY seq")]
    assert stored == list(range(1, 1001))
    assert store.query("SELECT count(DISTINCT action) FROM audit_records") == [(1000,)]
    store.close()
    assert_verifies(store.data_dir.root)


def test_queued_jobs_share_one_transaction(store: Store) -> None:
    gate = Gate(store)

    def job(tx: WriteTx) -> tuple[WriteTx, int]:
        return tx, tx.append(AUDIT, audit_row()).seq

    futures = [store.submit(job) for _ in range(200)]
    gate.open()
    results = [f.result(timeout=30) for f in futures]

    transactions = {id(tx) for tx, _ in results}
    assert len(transactions) == 1, "200 queued jobs should commit in one transaction"
    assert [seq for _, seq in results] == list(range(1, 201))
    assert store.query("SELECT count(*) FROM audit_records") == [(200,)]
    store.close()
    assert_verifies(store.data_dir.root)


def test_a_failing_job_fails_alone_and_its_batch_is_committed(store: Store) -> None:
    gate = Gate(store)

    def good(n: int) -> Callable[[WriteTx], int]:
        return lambda tx: tx.append(AUDIT, audit_row(f"good-{n}")).seq

    def raises(tx: WriteTx) -> None:
        tx.append(AUDIT, audit_row("half-done"))
        raise ValueError("boom")

    def bad_sql(tx: WriteTx) -> None:
        tx.append(ESIGNATURES, esig_row(1))
        tx.execute("INSERT INTO no_such_table VALUES (1)")

    futures: list[Future[Any]] = [store.submit(good(n)) for n in range(5)]
    failing = store.submit(raises)
    futures += [store.submit(good(n)) for n in range(5, 10)]
    failing_sql = store.submit(bad_sql)
    futures += [store.submit(good(n)) for n in range(10, 12)]
    gate.open()

    assert [f.result(timeout=30) for f in futures] == list(range(1, 13))
    with pytest.raises(ValueError, match="boom"):
        failing.result(timeout=10)
    with pytest.raises(RecordError, match="no_such_table"):
        failing_sql.result(timeout=10)
    actions = [a for (a,) in store.query("SELECT action FROM audit_records ORDER BY seq")]
    assert actions == [f"good-{n}" for n in range(12)]
    assert store.query("SELECT count(*) FROM esignature_records") == [(0,)]
    assert store.query("SELECT count(*) FROM checkpoints") == [(0,)]
    store.close()
    assert_verifies(store.data_dir.root)


def test_regulated_write_is_readable_as_soon_as_append_returns(store: Store) -> None:
    with store.reader() as long_lived:
        for i in range(25):
            appended = store.append(AUDIT, audit_row(f"a{i}"))
            with store.reader() as fresh:
                row = fresh.execute(
                    "SELECT action, digest FROM audit_records WHERE seq = ?", [appended.seq]
                ).fetchone()
            assert row == (f"a{i}", appended.digest)
            assert long_lived.execute("SELECT max(seq) FROM audit_records").fetchone() == (
                appended.seq,
            )


def test_store_reopens_with_heads_continuing(
    store: Store, clock: FakeClock, fill: Callable[..., Any]
) -> None:
    filled = fill(store, clock, audit=5, esignatures=2, security=1, qa=1)
    assert_verifies(filled.root)
    con = duckdb.connect(str(filled.root / "hmi.duckdb"), read_only=True)
    heads = {
        name: con.execute(f"SELECT seq, digest FROM {name} ORDER BY seq DESC LIMIT 1").fetchone()
        for name in CHAINED_TABLES
    }
    (checkpoints,) = con.execute("SELECT count(*) FROM checkpoints").fetchone()
    con.close()

    clock.advance(timedelta(hours=1))
    with Store.open(filled.root, clock=clock) as reopened:
        assert {n: (h.seq, h.digest) for n, h in reopened.heads.items()} == heads
        appended = {name: append_one(reopened, name).seq for name in CHAINED_TABLES}
    assert appended == {name: filled.counts[name] + 1 for name in CHAINED_TABLES}

    report = verify_data_dir(filled.root)
    assert report.ok, [str(p) for p in report.problems]
    assert report.rows == {name: filled.counts[name] + 1 for name in CHAINED_TABLES}
    # the checkpoint sequence continued too (one for the e-signature, one at close)
    assert report.checkpoints == report.anchors == checkpoints + 2


# -- refusals ------------------------------------------------------------------------------


def test_newer_schema_version_is_refused_and_the_file_is_unchanged(
    filled_dir: Path, clock: FakeClock
) -> None:
    newer = migrate.code_version() + 1
    con = duckdb.connect(str(filled_dir / "hmi.duckdb"))
    con.execute("UPDATE schema_meta SET value = ? WHERE key = 'schema_version'", [str(newer)])
    con.close()
    database = filled_dir / "hmi.duckdb"
    before = file_digest(database)
    listing = sorted(p.name for p in filled_dir.iterdir())

    with pytest.raises(DataDirectoryError) as refused:
        Store.open(filled_dir, clock=clock)

    message = str(refused.value)
    assert f"schema version {newer}" in message
    assert f"versions up to {migrate.code_version()}" in message
    assert refused.value.title == "Newer database"
    assert file_digest(database) == before
    assert sorted(p.name for p in filled_dir.iterdir()) == listing

    with pytest.raises(DataDirectoryError, match=f"schema version {newer}"):
        verify_data_dir(filled_dir)
    assert file_digest(database) == before


def test_create_refuses_a_non_empty_directory(data_root: Path) -> None:
    data_root.mkdir()
    (data_root / "notes.txt").write_text("batch 42")

    with pytest.raises(DataDirectoryError, match="not empty"):
        Store.create(data_root, clock=FakeClock())

    assert [p.name for p in data_root.iterdir()] == ["notes.txt"]
    assert (data_root / "notes.txt").read_text() == "batch 42"


def test_key_directory_and_files_are_private_whatever_the_umask(data_root: Path) -> None:
    old = os.umask(0)
    try:
        Store.create(data_root, clock=FakeClock()).close()
    finally:
        os.umask(old)

    keys = data_root / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in keys.iterdir()}
    assert files == {HMAC_KEY_FILE: 0o600, SIGNING_KEY_FILE: 0o600, PUBLIC_KEY_FILE: 0o600}
    assert stat.S_IMODE((data_root / "anchors.log").stat().st_mode) == 0o600


# -- other processes ---------------------------------------------------------------------------

LOCK_PROBE = """
    import json, sys
    from pathlib import Path
    from hmi.core.errors import DataDirectoryError
    from hmi.store.db import Store, _open_connection
    from hmi.store.verify import verify_data_dir

    root = Path(sys.argv[1])
    attempts = {
        "open_read_only": lambda: _open_connection(root / "hmi.duckdb", read_only=True),
        "store_open": lambda: Store.open(root),
        "verify": lambda: verify_data_dir(root),
    }
    out = {}
    for name, attempt in attempts.items():
        try:
            attempt()
            out[name] = "opened"
        except DataDirectoryError as exc:
            out[name] = [exc.title, exc.message]
    print(json.dumps(out))
"""


def test_a_second_process_cannot_open_a_held_database(store: Store) -> None:
    store.append(AUDIT, audit_row())

    probe = python(LOCK_PROBE, str(store.data_dir.root))
    out, err = probe.communicate(timeout=60)

    assert probe.returncode == 0, err
    results = json.loads(out)
    assert set(results) == {"open_read_only", "store_open", "verify"}
    for name, result in results.items():
        assert result != "opened", name
        title, message = result
        assert title == "Database in use", name
        assert "held by a running Custos runtime" in message, name
    # the holder is undisturbed
    assert store.append(AUDIT, audit_row()).seq == 2


WRITER = """
    import sys, threading
    from pathlib import Path
    from hmi.store.db import Store

    store = Store.open(Path(sys.argv[1]))
    out = threading.Lock()

    def audit(n):
        i = 0
        while True:
            seq = store.append("audit_records", {"action": f"w{n}-{i}", "outcome": "ok"}).seq
            with out:
                print("audit_records", seq, flush=True)
            i += 1

    def sign():
        i = 0
        while True:
            row = {"signature_id": f"s{i}", "signer_id": "u", "signer_name": "U",
                   "meaning": "m", "reason": "r", "content": "{}", "content_digest": "d",
                   "auth_mode": "password"}
            seq = store.append("esignature_records", row).seq
            with out:
                print("esignature_records", seq, flush=True)
            i += 1

    for target, args in [(audit, (0,)), (audit, (1,)), (audit, (2,)), (sign, ())]:
        threading.Thread(target=target, args=args, daemon=True).start()
    threading.Event().wait()
"""


def test_committed_rows_survive_kill_9_of_the_writer(data_root: Path, clock: FakeClock) -> None:
    Store.create(data_root, clock=clock).close()
    writer = python(WRITER, str(data_root))
    assert writer.stdout is not None
    printed: list[tuple[str, int]] = []
    try:
        deadline = time.monotonic() + 30
        while sum(1 for t, _ in printed if t == AUDIT.name) < 150:
            assert time.monotonic() < deadline, "the writer did not commit in time"
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else "writer exited"
            table, seq = line.split()
            printed.append((table, int(seq)))
    finally:
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    complete = rest.split("\n")[:-1]  # the kill may cut the last line short
    printed += [(t, int(s)) for t, s in (line.split() for line in complete)]
    assert any(t == ESIGNATURES.name for t, _ in printed)

    with Store.open(data_root, clock=clock) as reopened:
        present = {
            name: {seq for (seq,) in reopened.query(f"SELECT seq FROM {name}")}
            for name in (AUDIT.name, ESIGNATURES.name)
        }
        for name, seqs in present.items():
            assert seqs == set(range(1, len(seqs) + 1)), f"{name} has a gap after the crash"
        missing = [(t, s) for t, s in printed if s not in present[t]]
        assert missing == []
        after = reopened.append(AUDIT, audit_row("after-crash")).seq
        assert after == len(present[AUDIT.name]) + 1
    assert_verifies(data_root)


CRASH_AFTER_UNCHECKPOINTED_ROWS = """
    import sys
    from pathlib import Path
    from hmi.store.db import Store

    store = Store.open(Path(sys.argv[1]))
    for i in range(3):
        store.append("audit_records", {"action": f"tail-{i}", "outcome": "ok"})
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_rows_left_unvouched_by_a_crash_are_checkpointed_after_reopen(
    filled_dir: Path, clock: FakeClock, tamper: Callable[..., Any]
) -> None:
    """Rows committed after the last checkpoint before a crash: once the store has been
    opened and closed again, a checkpoint vouches for them, so deleting them is detected."""
    writer = python(CRASH_AFTER_UNCHECKPOINTED_ROWS, str(filled_dir), stdin=subprocess.PIPE)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)

    Store.open(filled_dir, clock=clock).close()  # a clean start and stop after the crash
    con = duckdb.connect(str(filled_dir / "hmi.duckdb"), read_only=True)
    (last_heads,) = con.execute(
        "SELECT heads FROM checkpoints ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    (head,) = con.execute("SELECT max(seq) FROM audit_records").fetchone()
    con.close()
    assert_verifies(filled_dir)

    assert parse_heads(last_heads)[AUDIT.name][0] == head
    tamper(filled_dir, f"DELETE FROM audit_records WHERE seq > {head - 3}")
    assert not verify_data_dir(filled_dir).ok


CRASH_BEFORE_ANCHORING = """
    import sys
    from pathlib import Path
    from hmi.store.db import Store

    root = Path(sys.argv[1])
    store = Store.open(root)
    (root / "anchors.log").rename(root / "anchors.log.saved")
    (root / "anchors.log").mkdir()  # the copy outside the database cannot be written
    row = {"signature_id": "late", "signer_id": "u", "signer_name": "U", "meaning": "m",
           "reason": "r", "content": "{}", "content_digest": "d", "auth_mode": "password"}
    store.append("esignature_records", row)  # committed with its checkpoint, not anchored
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_checkpoint_committed_but_not_anchored_before_a_crash_is_anchored_on_reopen(
    filled_dir: Path, clock: FakeClock
) -> None:
    """The runtime died after committing a checkpoint and before copying it to anchors.log
    (power cut, or the anchor file unwritable until then): the records are intact, so after
    the next start the directory must verify again."""
    writer = python(CRASH_BEFORE_ANCHORING, str(filled_dir), stdin=subprocess.PIPE)
    assert writer.stdout is not None
    line = writer.stdout.readline()
    assert line.strip() == "ready", writer.stderr.read() if writer.stderr else line
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)
    (filled_dir / "anchors.log").rmdir()
    (filled_dir / "anchors.log.saved").rename(filled_dir / "anchors.log")
    report = verify_data_dir(filled_dir)
    assert [p.table for p in report.problems] == ["anchors.log"]  # the state after the crash

    Store.open(filled_dir, clock=clock).close()

    assert_verifies(filled_dir)


# -- values the writer hashes one way and DuckDB stores another -----------------------------


class Action(str, enum.Enum):  # noqa: UP042 - not StrEnum: str() differs from the value
    START = "start"


def test_str_subclass_text_is_stored_as_its_plain_text(store: Store) -> None:
    """A str enum is hashed and stored as its value (str() of it would be 'Action.START')."""
    appended = store.append(AUDIT, audit_row(Action.START, detail=Action.START))

    assert store.query(
        "SELECT action, detail FROM audit_records WHERE seq = ?", [appended.seq]
    ) == [("start", "start")]
    store.close()
    assert_verifies(store.data_dir.root)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="bool"),
        pytest.param(42, id="int"),
        pytest.param(1.5, id="float"),
        pytest.param(b"raw", id="bytes"),
    ],
)
def test_non_text_value_for_a_text_column_is_refused(store: Store, value: object) -> None:
    """DuckDB would store its own conversion ('true', ...) of what was hashed as str(value)."""
    with pytest.raises(TypeError, match="expected text"):
        store.append(AUDIT, audit_row(detail=value))

    assert store.append(AUDIT, audit_row()).seq == 1  # nothing was written, no seq used
    store.close()
    assert_verifies(store.data_dir.root)
