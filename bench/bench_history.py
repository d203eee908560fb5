"""Tag history: sustained logged values per second with batch chaining, against plain DuckDB.

Issue 3, bench (3): at least 100,000 values/s into DuckDB with batch chaining on
one core, and the queue never growing without bound. Four runs in one
process, on the same disk, from the same pre-built ``TagChange`` objects (the
scanner builds those anyway, so building them is not counted):

* **baseline**: the same rows, columns built from the same objects and
  inserted as plain Arrow batches of the same size, one commit each, into a
  table of the same columns: no canonical form, no hashing, no chain, no
  writer thread. What DuckDB and pyarrow cost by themselves.
* **saturation**: ``HistoryWriter.record`` as fast as the writer can take
  values (the producer only yields when the buffer is half full, so nothing is
  refused): the ceiling in values/s, and per CPU-second of the whole process.
  Judged with ``record`` per value; ``record_many`` per poll of 1,000 (how a
  scanner can hand over a poll) is reported beside it.
* **paced**: a producer at the goal rate (100,000 values/s, in 10 ms bursts like
  a scanner's poll groups) for several seconds: every value committed, none
  refused, and the deepest the queue ever got: it must stay under half a
  second of values and drain within a second of the last value, which a queue
  growing with time would not. Process CPU over wall time shows the cores used.

DuckDB runs with ``threads=1`` throughout, so the figures are one core's
worth of database work. ``verify_data_dir`` over the result is timed as well
(each batch's SHA-256 recomputed in SQL). Absolute figures swing ±30% between
runs on these machines; the ratio to the baseline is what to compare.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from hmi.core.tags import Quality, TagChange
from hmi.store.db import Store
from hmi.store.history import HistoryWriter
from hmi.store.history_batch import split_value
from hmi.store.verify import verify_data_dir

GOAL_RATE = 100_000.0
TAGS = 10_000
SATURATION_VALUES = 600_000
PACED_SECONDS = 5.0
BURST_S = 0.01
MAX_ROWS = 5000
MAX_QUEUE = 200_000
_TS = pa.timestamp("us", tz="UTC")


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _changes(n: int, offset: int = 0) -> list[TagChange]:
    """``n`` changes as a scanner makes them: one server time per poll of 1,000 tags,
    mostly analog values, some counters and switches, one in a hundred written by a user."""
    base = datetime(2026, 1, 5, 8, tzinfo=UTC) + timedelta(seconds=offset)
    out: list[TagChange] = []
    for start in range(0, n, 1000):
        server = base + timedelta(milliseconds=start // 10)
        source = server - timedelta(milliseconds=3)
        for i in range(start, min(n, start + 1000)):
            k = (i + offset) % TAGS
            value: float | int | bool = (
                20.0 + (i % 977) * 0.013 if k % 10 < 8 else (i if k % 10 == 8 else i % 2 == 0)
            )
            out.append(
                TagChange(
                    f"AREA{k // 1000}.UNIT{k // 100 % 10}.TAG{k:05d}",
                    value,
                    Quality.GOOD,
                    source,
                    server,
                    "op1" if i % 100 == 0 else "device:plc1",
                    "",
                    k % 1000 == 999,
                )
            )
    return out


def _set_threads(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET threads = 1")


# -- the plain baseline ------------------------------------------------------------


def _baseline(root: Path, changes: list[TagChange]) -> dict[str, Any]:
    """Plain Arrow inserts of the same rows, MAX_ROWS per insert and commit."""
    con = duckdb.connect(str(root / "plain.duckdb"))
    _set_threads(con)
    con.execute(
        "CREATE TABLE plain_history (tag VARCHAR, source_time TIMESTAMPTZ, server_time "
        "TIMESTAMPTZ, value_num DOUBLE, value_text VARCHAR, quality VARCHAR, reason VARCHAR, "
        "actor VARCHAR, unattributed BOOLEAN)"
    )
    cpu0, start = time.process_time(), time.perf_counter()
    for lo in range(0, len(changes), MAX_ROWS):
        chunk = changes[lo : lo + MAX_ROWS]
        split = [split_value(c.value) for c in chunk]
        table = pa.table(
            {
                "tag": pa.array([c.tag for c in chunk], pa.string()),
                "source_time": pa.array([c.source_time for c in chunk], _TS),
                "server_time": pa.array([c.server_time for c in chunk], _TS),
                "value_num": pa.array([s[0] for s in split], pa.float64()),
                "value_text": pa.array([s[1] for s in split], pa.string()),
                "quality": pa.array([c.quality.value for c in chunk], pa.string()),
                "reason": pa.array([c.reason for c in chunk], pa.string()),
                "actor": pa.array([c.actor for c in chunk], pa.string()),
                "unattributed": pa.array([c.unattributed for c in chunk], pa.bool_()),
            }
        )
        con.from_arrow(table).insert_into("plain_history")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    (rows,) = con.execute("SELECT count(*) FROM plain_history").fetchone() or (0,)
    con.close()
    assert rows == len(changes)
    return {
        "values": len(changes),
        "values_per_s": round(len(changes) / wall),
        "values_per_cpu_s": round(len(changes) / cpu),
    }


# -- through the history writer ------------------------------------------------------


def _saturation(root: Path, changes: list[TagChange], *, many: bool) -> dict[str, Any]:
    """As fast as the writer takes them, by ``record`` per value or ``record_many`` per poll."""
    store = Store.create(root)
    _set_threads(store.write_connection)
    writer = HistoryWriter(store, max_rows=MAX_ROWS, max_delay_s=0.5, max_queue=MAX_QUEUE)
    yields = 0
    cpu0, start = time.process_time(), time.perf_counter()
    for lo in range(0, len(changes), 1000):
        poll = changes[lo : lo + 1000]
        if many:
            writer.record_many(poll)
        else:
            for change in poll:
                writer.record(change)
        while writer.stats.queued > MAX_QUEUE // 2:
            yields += 1
            time.sleep(0.001)
    produced = time.perf_counter() - start
    assert writer.flush(timeout=120)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    stats = writer.stats
    writer.close()
    store.close()
    return {
        "values": len(changes),
        "values_per_s": round(stats.flushed / wall),
        "values_per_cpu_s": round(stats.flushed / cpu),
        "cores_used": round(cpu / wall, 2),
        "record_wall_us_per_value": round(produced / len(changes) * 1e6, 2),
        "producer_yields": yields,
        "batches": stats.batches,
        "lost": stats.lost,
        "max_queue_depth": stats.max_queue_depth,
    }


def _paced(root: Path) -> dict[str, Any]:
    per_burst = int(GOAL_RATE * BURST_S)
    bursts = int(PACED_SECONDS / BURST_S)
    changes = _changes(per_burst * bursts, offset=3600)
    store = Store.create(root)
    _set_threads(store.write_connection)
    writer = HistoryWriter(store, max_rows=MAX_ROWS, max_delay_s=0.5, max_queue=MAX_QUEUE)
    depth_per_second: list[int] = []
    late = 0
    cpu0, start = time.process_time(), time.perf_counter()
    for b in range(bursts):
        due = start + b * BURST_S
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > BURST_S:
            late += 1
        for change in changes[b * per_burst : (b + 1) * per_burst]:
            writer.record(change)
        if b % int(1 / BURST_S) == 0:
            depth_per_second.append(writer.stats.queued)
    produced = time.perf_counter() - start
    cpu_produced = time.process_time() - cpu0
    assert writer.flush(timeout=120)
    wall = time.perf_counter() - start
    stats = writer.stats
    writer.close()
    store.close()
    return {
        "values": len(changes),
        "offered_per_s": round(len(changes) / produced),
        "committed_per_s": round(stats.flushed / wall),
        "drain_after_last_value_s": round(wall - produced, 3),
        "cores_used_while_producing": round(cpu_produced / produced, 2),
        "bursts_late_by_more_than_one": late,
        "lost": stats.lost,
        "max_queue_depth": stats.max_queue_depth,
        "queued_each_second": depth_per_second,
        "batches": stats.batches,
    }


def _verify(root: Path) -> dict[str, Any]:
    start = time.perf_counter()
    report = verify_data_dir(root)
    wall = time.perf_counter() - start
    con = duckdb.connect(str(root / "hmi.duckdb"), read_only=True)
    (values,) = con.execute("SELECT count(*) FROM tag_history_values").fetchone() or (0,)
    con.close()
    return {"ok": report.ok, "values": values, "values_per_s": round(values / wall)}


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        load_before = os.getloadavg()[0]
        changes = _changes(SATURATION_VALUES)
        baseline = _baseline(tmp, changes)
        saturation = _saturation(tmp / "saturation", changes, many=False)
        verify = _verify(tmp / "saturation")
        saturation_many = _saturation(tmp / "saturation-many", changes, many=True)
        del changes
        paced = _paced(tmp / "paced")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # Kept up: never more than half a second of values behind, drained within a second
    # of the last value, nothing refused. A queue growing with time would fail all three.
    depth_bound = int(GOAL_RATE * 0.5)
    queue_bounded = (
        paced["lost"] == 0
        and saturation["lost"] == 0
        and paced["max_queue_depth"] <= depth_bound
        and paced["drain_after_last_value_s"] < 1.0
        and saturation["max_queue_depth"] <= MAX_QUEUE
    )
    figures = {
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "batch_rows": MAX_ROWS,
        "max_queue": MAX_QUEUE,
        "duckdb_threads": 1,
        "plain_arrow_baseline": baseline,
        "saturation": saturation,
        "saturation_record_many": saturation_many,
        "paced_at_goal": paced,
        "verify": verify,
        "ratios": {
            "saturation_vs_plain_arrow": _ratio(
                saturation["values_per_s"], baseline["values_per_s"]
            ),
            "saturation_per_cpu_vs_plain_arrow": _ratio(
                saturation["values_per_cpu_s"], baseline["values_per_cpu_s"]
            ),
        },
    }
    goals = {
        "sustained values/s with batch chaining (saturation, DuckDB on 1 thread)": {
            "target": f">= {GOAL_RATE:,.0f}",
            "measured": saturation["values_per_s"],
            "met": saturation["values_per_s"] >= GOAL_RATE and saturation["lost"] == 0,
        },
        "values per CPU-second of the whole process (one core's worth)": {
            "target": f">= {GOAL_RATE:,.0f}",
            "measured": saturation["values_per_cpu_s"],
            "met": saturation["values_per_cpu_s"] >= GOAL_RATE,
        },
        "paced at 100,000 values/s: all committed, none lost, queue bounded": {
            "target": (
                f"lost 0, max depth <= {depth_bound:,} (0.5 s of values), drained < 1 s after "
                "the last value, committed >= 95% of goal"
            ),
            "measured": {
                "lost": paced["lost"],
                "max_queue_depth": paced["max_queue_depth"],
                "drain_after_last_value_s": paced["drain_after_last_value_s"],
                "committed_per_s": paced["committed_per_s"],
            },
            "met": queue_bounded and paced["committed_per_s"] >= 0.95 * GOAL_RATE,
        },
        "verify ok over the history written": {
            "target": "ok",
            "measured": verify["ok"],
            "met": verify["ok"],
        },
    }
    return {"name": "history", "figures": figures, "goals": goals}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
