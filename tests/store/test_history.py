"""SUP-5 / REC-1: tag history is written in few chained batches, reads back through the
``tag_history`` view with its actor, and ``verify`` names every changed, deleted or
inserted value by batch seq and row index. A writer that falls behind refuses values
rather than growing without bound, and records what it refused."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hmi.core.clock import FakeClock
from hmi.core.errors import RecordError
from hmi.core.tags import Quality, TagChange, TagScalar
from hmi.store.db import Store
from hmi.store.history import HistoryWriter, Loss, prepare_batch, write_batch
from hmi.store.history_batch import ROW_COLUMNS, ROW_SQL, SYSTEM_ACTOR, join_value
from hmi.store.tables import HISTORY_BATCHES
from hmi.store.verify import VerifyReport, verify_data_dir

Tamper = Callable[..., list[tuple[Any, ...]]]
Read = Callable[..., list[tuple[Any, ...]]]

BATCHES = HISTORY_BATCHES.name
T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
ROWS_PER_BATCH = 50


def at(i: int) -> datetime:
    return T0 + timedelta(milliseconds=10 * i, microseconds=i)


def sample(i: int) -> TagChange:
    """Value ``i`` of the standard history: each kind of value, users and devices."""
    kind = i % 5
    value: TagScalar | None = [20.0 + i / 8, i * 1000, i % 2 == 0, f"lot|{i}~", None][kind]
    return TagChange(
        tag=f"BR10{i % 3}.T",
        value=value,
        quality=Quality.BAD if value is None else Quality.GOOD,
        source_time=at(i) - timedelta(milliseconds=2),
        server_time=at(i),
        actor="op1" if i % 7 == 0 else "device:plc1",
        reason=f"reason {i}: ü",
        unattributed=i % 11 == 0,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def ok(root: Path) -> VerifyReport:
    report = verify_data_dir(root)
    assert report.ok, [str(p) for p in report.problems]
    return report


def failed(root: Path) -> list[tuple[str, int | None, str]]:
    report = verify_data_dir(root)
    assert not report.ok
    return [(p.table, p.seq, p.message) for p in report.problems]


# -- batches and transactions ---------------------------------------------------------


def test_many_values_land_in_few_transactions(store: Store, monkeypatch: Any) -> None:
    submitted: list[int] = []
    real_submit = store.submit

    def counting_submit(fn: Callable[..., Any]) -> Future[Any]:
        submitted.append(1)
        return real_submit(fn)

    monkeypatch.setattr(store, "submit", counting_submit)
    writer = HistoryWriter(store, max_rows=1000, max_delay_s=60)
    for i in range(12_000):
        assert writer.record(sample(i))
    assert writer.flush()
    stats = writer.stats
    writer.close()

    assert (stats.flushed, stats.batches, stats.queued, stats.lost) == (12_000, 12, 0, 0)
    assert len(submitted) == 12  # one store job (one transaction) per batch, not per value
    assert store.query(f"SELECT count(*), min(row_count), max(row_count) FROM {BATCHES}") == [
        (12, 1000, 1000)
    ]
    assert store.query("SELECT count(*) FROM tag_history") == [(12_000,)]
    assert 1000 <= stats.max_queue_depth <= 12_000


def test_values_are_flushed_by_age_without_asking(store: Store) -> None:
    writer = HistoryWriter(store, max_rows=1000, max_delay_s=0.5)
    try:
        assert writer.record_many([sample(i) for i in range(3)]) == 3  # one lock: one batch
        wait_for(lambda: store.query("SELECT count(*) FROM tag_history") == [(3,)])
        # The batch is counted just after its commit makes the rows visible.
        wait_for(lambda: writer.stats.batches >= 1)
        assert writer.stats.batches == 1
    finally:
        writer.close()


def test_close_writes_everything_still_buffered(store: Store) -> None:
    writer = HistoryWriter(store, max_rows=1000, max_delay_s=60)
    for i in range(1500):
        writer.record(sample(i))

    writer.close()

    assert store.query("SELECT count(*) FROM tag_history") == [(1500,)]
    assert writer.stats.queued == 0
    assert writer.record(sample(9)) is False  # refused after close, and counted
    assert writer.stats.lost == 1


# -- reading it back ----------------------------------------------------------------------


def test_rows_read_back_through_the_view(store: Store) -> None:
    big = 2**63 - 1
    changes = [
        TagChange("BR101.TEMP", 37.25, Quality.GOOD, T0, at(1), "device:plc1"),
        TagChange("BR101.TEMP_SP", 37.5, Quality.GOOD, None, at(2), "op1", "setpoint"),
        TagChange("BR101.TEMP_SP", 40.0, Quality.GOOD, T0, at(3), "device:plc1", "", True),
        TagChange("PUMP_RUN", True, Quality.GOOD, None, at(4), "device:plc1"),
        TagChange("RECIPE", "A-12 | µ", Quality.UNCERTAIN, None, at(5), "device:plc1", "stale"),
        TagChange("COUNTER", big, Quality.GOOD, None, at(6), "device:plc1"),
        TagChange("BR101.PH", None, Quality.BAD, None, at(7), "device:plc1", "timeout"),
        TagChange("BR101.DO", float("nan"), Quality.GOOD, None, at(8), "device:plc1"),
        TagChange("BR101.DO", float("-inf"), Quality.GOOD, None, at(9), "device:plc1", "x"),
    ]
    with HistoryWriter(store) as writer:
        for c in changes:
            writer.record(c)

    rows = store.query(
        "SELECT time, source_time, tag, value, value_text, quality, reason, actor_id, device, "
        "unattributed FROM tag_history ORDER BY time"
    )

    assert [r[:3] for r in rows] == [(c.server_time, c.source_time, c.tag) for c in changes]
    assert [(r[7], r[8], r[9]) for r in rows] == [
        (None, "plc1", False),
        ("op1", None, False),
        (None, "plc1", True),
        *[(None, "plc1", False)] * 6,
    ]
    assert [join_value(r[3], r[4]) for r in rows[:7]] == [
        37.25,
        37.5,
        40.0,
        True,
        "A-12 | µ",
        big,
        None,
    ]
    assert rows[5][3] == float(big)
    assert [r[5] for r in rows] == ["GOOD"] * 4 + ["UNCERTAIN", "GOOD", "BAD", "BAD", "BAD"]
    assert rows[7][3:5] == (None, None)
    assert rows[7][6] == "the device reported nan, not a number; stored as NULL"
    assert rows[8][6] == "x; the device reported -inf, not a number; stored as NULL"
    root = store.data_dir.root
    store.close()
    ok(root)


def test_values_table_columns_are_batch_seq_then_the_canonical_columns(store: Store) -> None:
    """The batch insert is positional, and verify's SQL names these columns."""
    names = store.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'tag_history_values' ORDER BY ordinal_position"
    )
    assert [n for (n,) in names] == ["batch_seq", *(name for name, _ in ROW_COLUMNS)]


def test_guard_triggers_refuse_update_and_delete_of_values(store: Store) -> None:
    write_batch(store, [sample(i) for i in range(5)])
    with store.reader() as cur:
        with pytest.raises(duckdb.ConstraintException, match="guard_refusals"):
            cur.execute("UPDATE tag_history_values SET value_num = 0")
        with pytest.raises(duckdb.ConstraintException, match="guard_refusals"):
            cur.execute("DELETE FROM tag_history_values WHERE false")
    assert store.query("SELECT count(*) FROM tag_history") == [(5,)]


def test_a_value_that_cannot_be_stored_is_refused_at_once(store: Store) -> None:
    with HistoryWriter(store) as writer:
        naive = TagChange("T", 1.0, Quality.GOOD, None, datetime(2026, 1, 5), "device:plc1")
        with pytest.raises(ValueError, match="timezone-aware"):
            writer.record(naive)
        with pytest.raises(TypeError, match="bytes"):
            writer.record(TagChange("T", b"\x00", Quality.GOOD, None, T0, "device:plc1"))
        assert writer.stats.lost == 0


# -- backpressure -------------------------------------------------------------------------


def stall(store: Store) -> threading.Event:
    """Hold the store's writer thread until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold(_: Any) -> None:
        started.set()
        release.wait(30)

    store.submit(hold)
    assert started.wait(5)
    return release


def test_a_stalled_writer_bounds_the_queue_and_records_the_loss(store: Store) -> None:
    losses: list[list[Loss]] = []
    writer = HistoryWriter(
        store, max_rows=100, max_delay_s=0.02, max_queue=500, on_loss=losses.append
    )
    release = stall(store)
    try:
        accepted = 0
        for i in range(3000):
            accepted += writer.record(sample(i))
            if i % 100 == 0:
                time.sleep(0.005)  # let the flusher take and submit what it can
        stats = writer.stats
        assert stats.max_queue_depth <= 500
        assert stats.queued == accepted <= 500 + 2 * 100  # the buffer and two batches in flight
        assert stats.lost == 3000 - accepted >= 2300
        assert stats.flushed == 0
    finally:
        release.set()
    assert writer.flush()
    stats = writer.stats
    writer.close()

    assert (stats.flushed, stats.lost, stats.loss_recorded) == (
        accepted,
        3000 - accepted,
        3000 - accepted,
    )
    markers = store.query(
        "SELECT tag, quality, value, reason FROM tag_history WHERE actor = ? ORDER BY tag",
        [SYSTEM_ACTOR],
    )
    assert {m[0] for m in markers} == {"BR100.T", "BR101.T", "BR102.T"}
    assert all(m[1] == "BAD" and m[2] is None for m in markers)
    assert all("not recorded: history writer behind, queue full" in m[3] for m in markers)
    counted = sum(int(m[3].split("history: ")[1].split(" ")[0]) for m in markers)
    assert counted == stats.lost
    assert store.query(f"SELECT sum(lost_values) FROM {BATCHES}") == [(stats.lost,)]
    assert sum(loss.count for batch in losses for loss in batch) == stats.lost
    assert store.query("SELECT count(*) FROM tag_history WHERE actor <> ?", [SYSTEM_ACTOR]) == [
        (accepted,)
    ]
    root = store.data_dir.root
    store.close()
    ok(root)


def test_record_many_takes_what_fits_and_refuses_the_rest(store: Store) -> None:
    writer = HistoryWriter(store, max_rows=300, max_delay_s=60, max_queue=300)
    release = stall(store)
    try:
        assert writer.record_many([sample(i) for i in range(250)]) == 250
        assert writer.record_many([sample(i) for i in range(250, 500)]) == 300 - 250
        assert writer.stats.lost == 200
        assert writer.stats.max_queue_depth == 300
    finally:
        release.set()
    assert writer.flush()
    writer.close()
    assert store.query("SELECT count(*) FROM tag_history WHERE actor <> ?", [SYSTEM_ACTOR]) == [
        (300,)
    ]
    assert store.query(f"SELECT sum(lost_values) FROM {BATCHES}") == [(200,)]


def test_a_failed_batch_is_recorded_as_lost_in_the_next(store: Store, monkeypatch: Any) -> None:
    errors: list[Exception] = []
    real_submit = store.submit
    calls: list[int] = []

    def flaky_submit(fn: Callable[..., Any]) -> Future[Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RecordError("The record could not be written: the disk is full")
        return real_submit(fn)

    monkeypatch.setattr(store, "submit", flaky_submit)
    writer = HistoryWriter(store, max_rows=100, max_delay_s=60, on_error=errors.append)
    for i in range(10):
        writer.record(sample(i))

    assert writer.flush() is False  # the batch failed
    assert writer.flush() is True  # the loss is now recorded
    stats = writer.stats
    writer.close()

    assert (stats.failed_batches, stats.lost, stats.loss_recorded, stats.flushed) == (1, 10, 10, 0)
    assert len(errors) == 1 and "disk is full" in str(errors[0])
    reasons = [
        r
        for (r,) in store.query(
            "SELECT reason FROM tag_history WHERE actor = ? ORDER BY tag", [SYSTEM_ACTOR]
        )
    ]
    assert len(reasons) == 3
    assert all("could not be written" in r and "disk is full" in r for r in reasons)


# -- verify detects tampering ---------------------------------------------------------------


@pytest.fixture(scope="module")
def history_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed data directory with three batches of 50 values (batch seq 1..3)."""
    root = tmp_path_factory.mktemp("history") / "data"
    store = Store.create(root, clock=FakeClock())
    with HistoryWriter(store, max_rows=ROWS_PER_BATCH, max_delay_s=60) as writer:
        for i in range(3 * ROWS_PER_BATCH):
            writer.record(sample(i))
    store.close()
    return root


@pytest.fixture
def history_dir(tmp_path: Path, history_template: Path) -> Iterator[Path]:
    root = tmp_path / "data"
    shutil.copytree(history_template, root)
    yield root


def test_untouched_history_verifies(history_dir: Path, read: Read) -> None:
    report = ok(history_dir)
    assert report.rows[BATCHES] == 3
    assert read(history_dir, f"SELECT seq, row_count FROM {BATCHES} ORDER BY seq") == [
        (1, 50),
        (2, 50),
        (3, 50),
    ]


ROW = "batch_seq = 2 AND idx = 7"  # value 57: a bool, with every column set
CHANGES = {
    "tag": "tag || 'x'",
    "source_time": "source_time + INTERVAL 1 MICROSECOND",
    "server_time": "server_time - INTERVAL 1 MICROSECOND",
    "value_num": "value_num + 1",
    "value_text": "value_text || 'x'",
    "quality": "'UNCERTAIN'",
    "reason": "reason || '.'",
    "actor": "'op2'",
    "unattributed": "NOT unattributed",
}


NULLABLE = ("source_time", "value_num", "value_text")
EDITS = [
    *(pytest.param(c, e, id=f"{c}-changed") for c, e in CHANGES.items()),
    *(pytest.param(c, "NULL", id=f"{c}-to-null") for c in NULLABLE),
]


@pytest.mark.parametrize(("column", "expression"), EDITS)
def test_changed_value_is_named_by_batch_and_row(
    history_dir: Path, tamper: Tamper, read: Read, column: str, expression: str
) -> None:
    (tag,) = read(history_dir, f"SELECT tag FROM tag_history_values WHERE {ROW}")[0]
    tamper(
        history_dir,
        f"UPDATE tag_history_values SET {column} = {expression} WHERE {ROW}",
    )
    if column == "tag":
        tag += "x"

    assert failed(history_dir) == [
        (BATCHES, 2, f"history row 7 ({tag}) does not match the batch (changed)")
    ]


def test_the_smallest_change_of_a_double_is_detected(history_dir: Path, tamper: Tamper) -> None:
    """Value 55 is a float (26.875): one ulp up still changes the canonical text."""
    tamper(
        history_dir,
        "UPDATE tag_history_values SET value_num = nextafter(value_num, 1e9) "
        "WHERE batch_seq = 2 AND idx = 5",
    )
    assert failed(history_dir) == [
        (BATCHES, 2, "history row 5 (BR101.T) does not match the batch (changed)")
    ]


def test_deleted_value_is_named(history_dir: Path, tamper: Tamper) -> None:
    tamper(history_dir, f"DELETE FROM tag_history_values WHERE {ROW}")

    assert failed(history_dir) == [(BATCHES, 2, "history row 7 is missing (deleted)")]


def test_all_values_of_a_batch_deleted(history_dir: Path, tamper: Tamper) -> None:
    tamper(history_dir, "DELETE FROM tag_history_values WHERE batch_seq = 1")

    assert failed(history_dir) == [
        (BATCHES, 1, "all 50 history rows of the batch are missing (deleted)")
    ]


def test_inserted_value_is_named(history_dir: Path, tamper: Tamper) -> None:
    tamper(
        history_dir,
        "INSERT INTO tag_history_values SELECT * REPLACE (50 AS idx, 99.0 AS value_num) "
        f"FROM tag_history_values WHERE {ROW}",
    )

    assert failed(history_dir) == [
        (BATCHES, 2, "history row 50 (BR100.T) is not part of the batch of 50 (inserted)")
    ]


def test_inserted_copy_and_forged_row_at_an_existing_index(
    history_dir: Path, tamper: Tamper
) -> None:
    tamper(
        history_dir,
        [
            f"INSERT INTO tag_history_values SELECT * FROM tag_history_values WHERE {ROW}",
            "INSERT INTO tag_history_values SELECT * REPLACE ('forged' AS reason) "
            "FROM tag_history_values WHERE batch_seq = 3 AND idx = 0",
        ],
    )

    assert failed(history_dir) == [
        (BATCHES, 2, "history row 7 appears 2 times (inserted)"),
        (BATCHES, 3, "history row 0 (BR101.T) is a second row 0 (inserted)"),
    ]


def test_swapped_rows_are_named(history_dir: Path, tamper: Tamper) -> None:
    tamper(
        history_dir,
        "UPDATE tag_history_values SET idx = CASE idx WHEN 3 THEN 4 ELSE 3 END "
        "WHERE batch_seq = 1 AND idx IN (3, 4)",
    )

    problems = failed(history_dir)
    assert [(t, s) for t, s, _ in problems] == [(BATCHES, 1), (BATCHES, 1)]
    assert [m.split(" (")[0] for _, _, m in problems] == ["history row 3", "history row 4"]


def test_value_moved_to_another_batch(history_dir: Path, tamper: Tamper) -> None:
    tamper(history_dir, f"UPDATE tag_history_values SET batch_seq = 3 WHERE {ROW}")

    assert failed(history_dir) == [
        (BATCHES, 2, "history row 7 is missing (deleted)"),
        (BATCHES, 3, "history row 7 (BR100.T) is a second row 7 (inserted)"),
    ]


def test_values_of_a_batch_that_does_not_exist(history_dir: Path, tamper: Tamper) -> None:
    tamper(
        history_dir,
        "INSERT INTO tag_history_values SELECT * REPLACE (9 AS batch_seq) "
        "FROM tag_history_values WHERE batch_seq = 1 AND idx < 4",
    )

    assert failed(history_dir) == [
        (
            BATCHES,
            9,
            "4 history row(s) name batch 9, which is missing (batches end at seq 3: truncated?)",
        )
    ]


def test_batch_sha256_recomputed_to_match_edited_values_breaks_the_chain(
    history_dir: Path, tamper: Tamper
) -> None:
    """An attacker who edits a value and rewrites the batch's SHA-256 to match still needs
    the HMAC key: the batch row's digest no longer matches."""
    tamper(
        history_dir,
        [
            f"UPDATE tag_history_values SET value_num = 5 WHERE {ROW}",
            f"UPDATE {BATCHES} SET rows_sha256 = unhex((SELECT sha256(string_agg({ROW_SQL}, "
            "chr(10) ORDER BY idx)) FROM tag_history_values WHERE batch_seq = 2)) WHERE seq = 2",
        ],
    )

    assert failed(history_dir) == [
        (
            BATCHES,
            2,
            "digest does not match: the row was altered, inserted, or the row before it was "
            "removed",
        )
    ]


def test_changed_batch_row_is_detected_by_the_chain(history_dir: Path, tamper: Tamper) -> None:
    tamper(history_dir, f"UPDATE {BATCHES} SET row_count = 49 WHERE seq = 2")

    problems = failed(history_dir)
    assert [(t, s) for t, s, _ in problems] == [(BATCHES, 2)]
    assert "digest does not match" in problems[0][2]


def test_deleted_last_batch_with_its_values_is_caught_by_the_checkpoint(
    history_dir: Path, tamper: Tamper
) -> None:
    tamper(
        history_dir,
        [
            "DELETE FROM tag_history_values WHERE batch_seq = 3",
            f"DELETE FROM {BATCHES} WHERE seq = 3",
        ],
    )

    problems = failed(history_dir)
    assert problems
    assert all(t == BATCHES and s == 3 and "truncated?" in m for t, s, m in problems)
    assert any("records end at seq 2" in m for _, _, m in problems)


def test_deleted_middle_batch_with_its_values_is_a_gap_in_the_chain(
    history_dir: Path, tamper: Tamper
) -> None:
    tamper(
        history_dir,
        [
            "DELETE FROM tag_history_values WHERE batch_seq = 2",
            f"DELETE FROM {BATCHES} WHERE seq = 2",
        ],
    )

    problems = failed(history_dir)
    assert any(s == 3 and "row 2 is missing" in m for _, s, m in problems)


def test_deleted_batch_row_leaving_its_values(history_dir: Path, tamper: Tamper) -> None:
    tamper(history_dir, f"DELETE FROM {BATCHES} WHERE seq = 3")

    problems = failed(history_dir)
    assert (
        BATCHES,
        3,
        "50 history row(s) name batch 3, which is missing (batches end at seq 2: truncated?)",
    ) in problems


# -- the canonical form: Python and DuckDB agree ----------------------------------------------

EDGE_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072009e-308,  # largest subnormal
    2.2250738585072014e-308,  # smallest normal
    1.7976931348623157e308,
    -1.7976931348623157e308,
    1e16,
    1e15,
    9007199254740993.0,
    0.1,
    1 / 3,
    1e-5,
    123456.789e-300,
    float("nan"),
    float("inf"),
    float("-inf"),
]
TEXTS = ["", "|", "~", ":", "s3:abc", "a|i1|~", "line\nbreak\r\n", "\x00", "µ°✓温度", "🧪"]
texts = st.one_of(st.sampled_from(TEXTS), st.text(max_size=30))
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
times = st.datetimes(min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 29), timezones=zones)
values: st.SearchStrategy[TagScalar | None] = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.sampled_from(EDGE_FLOATS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    texts,
    st.none(),
)
changes = st.builds(
    TagChange,
    tag=texts.filter(bool),
    value=values,
    quality=st.sampled_from(Quality),
    source_time=times | st.none(),
    server_time=times,
    actor=texts,
    reason=texts,
    unattributed=st.booleans(),
)


@given(batch=st.lists(changes, min_size=1, max_size=12))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_python_and_sql_canonical_forms_agree(store: Store, batch: list[TagChange]) -> None:
    expected = prepare_batch(batch)
    appended = write_batch(store, batch)

    stored = store.query(
        f"SELECT {ROW_SQL} FROM tag_history_values WHERE batch_seq = ? ORDER BY idx",
        [appended.seq],
    )
    assert [text for (text,) in stored] == [line.decode("utf-8") for line in expected.lines]
    assert store.query(
        f"SELECT lower(hex(rows_sha256)) = (SELECT sha256(string_agg({ROW_SQL}, chr(10) "
        f"ORDER BY idx)) FROM tag_history_values WHERE batch_seq = ?) FROM {BATCHES} "
        "WHERE seq = ?",
        [appended.seq, appended.seq],
    ) == [(True,)]


@pytest.mark.parametrize("value", EDGE_FLOATS, ids=repr)
def test_every_double_reads_back_exactly_or_as_bad_null(store: Store, value: float) -> None:
    write_batch(store, [TagChange("T", value, Quality.GOOD, None, T0, "device:plc1")])

    ((number, quality),) = store.query("SELECT value, quality FROM tag_history")
    if value != value or value in (float("inf"), float("-inf")):
        assert (number, quality) == (None, "BAD")
    else:
        assert repr(number) == repr(value) and quality == "GOOD"
