"""The record store's throughput, latency and verify rate, against plain DuckDB.

What Custos promises is that a caller is released only once its chained
audit row is durable. That costs something over a plain insert (a queue hop
to the writer thread, an HMAC, a transaction around each batch), and group
commit is supposed to win it back under load. So every figure here is set
against plain DuckDB measured in the same run, on the same disk, with a
table of the same columns: autocommit parameterised single-row inserts (what
a naive writer would do, one fsync per row) and one big Arrow insert (the
ceiling for bulk loading). Absolute figures swing ±30% between runs on these
machines; the ratios are what to compare across runs.

Goals (from the record-store requirements):

(a) one caller appending in a loop: ≥ 500 committed events/s;
(b) many callers at once: ≥ 5,000 committed events/s with p99 latency
    (submit → future resolved, i.e. durable) < 50 ms. Judged at 64 concurrent
    callers in both shapes a caller can take: 64 threads each blocking on
    ``append`` and one producer keeping 64 ``submit()`` futures in flight.
    Fewer callers cannot show capacity (by Little's law 16 blocking callers
    reach 5,000/s only if each commit returns within 3.2 ms), and a deeper
    window cannot meet the latency goal (512 in flight at 5,000/s is ≈ 100 ms
    of queue by construction); both are reported as figures, not judged;
(c) ``verify_data_dir`` over ≥ 200,000 chained rows at ≥ 200,000 rows/s.

Everything runs in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from hmi.core.audit import Kind
from hmi.store.db import Store, WriteTx
from hmi.store.tables import AUDIT
from hmi.store.verify import verify_data_dir

SINGLE_SECONDS = 2.5
CONCURRENT_SECONDS = 2.5
GOAL_CALLERS = 64
THREAD_COUNTS = (16, GOAL_CALLERS)
IN_FLIGHT = (GOAL_CALLERS, 512)
PLAIN_THREADS = GOAL_CALLERS
FILL_ROWS = 200_000
FILL_JOB_ROWS = 10_000
PLAIN_BULK_ROWS = 200_000

GOAL_SINGLE = 500.0
GOAL_CONCURRENT = 5_000.0
GOAL_P99_MS = 50.0
GOAL_VERIFY = 200_000.0

# A realistic audit event: an operator changing a setpoint (≈ 280 canonical bytes).
EVENT: dict[str, object] = {
    "actor_id": "u-0042",
    "actor_name": "Jane Operator",
    "terminal_id": "HMI-LINE2-01",
    "source": "console",
    "action": "setpoint.write",
    "target": "Line2/Bioreactor3/TIC-101.SP",
    "old_value": "37.0",
    "new_value": "37.5",
    "units": "degC",
    "reason": "Per batch record BR-2291 step 14",
    "outcome": "ok",
    "signature_ids": None,
    "run_id": "RUN-2026-0113",
    "step": "14",
    "detail": '{"limits":[30.0,40.0],"mode":"auto"}',
}

_SQL_TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.INT: "BIGINT",
    Kind.BOOL: "BOOLEAN",
    Kind.TIMESTAMP: "TIMESTAMPTZ",
    Kind.BLOB: "BLOB",
}
_ARROW_TYPES = {
    Kind.TEXT: pa.string(),
    Kind.INT: pa.int64(),
    Kind.BOOL: pa.bool_(),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.BLOB: pa.binary(),
}
_PLAIN_COLUMNS = [*AUDIT.columns, ("digest", Kind.BLOB)]
_FAKE_DIGEST = bytes(range(32))


# -- small helpers ------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index] * 1000.0


def _latency(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 50), 3),
        "p99_ms": round(_pct(values, 99), 3),
        "max_ms": round(max(values) * 1000.0, 3) if values else float("nan"),
    }


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _plain_row(seq: int) -> list[object]:
    full = {**EVENT, "seq": seq, "ts": datetime.now(UTC), "digest": _FAKE_DIGEST}
    return [full.get(name) for name, _ in _PLAIN_COLUMNS]


def _run_threads(n: int, body: Callable[[int], None]) -> None:
    """Run ``body(i)`` on ``n`` threads released together; re-raise the first failure."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def target(i: int) -> None:
        try:
            barrier.wait()
            body(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# -- the plain DuckDB baseline ------------------------------------------------


def _plain_baseline(root: Path) -> dict[str, Any]:
    """What DuckDB itself does with the same rows, without chaining or a writer thread."""
    con = duckdb.connect(str(root / "plain.duckdb"))
    cols = ", ".join(
        f"{name} {_SQL_TYPES[kind]}{' PRIMARY KEY' if name == 'seq' else ''}"
        for name, kind in _PLAIN_COLUMNS
    )
    con.execute(f"CREATE TABLE plain_audit ({cols})")
    insert = f"INSERT INTO plain_audit VALUES ({', '.join('?' for _ in _PLAIN_COLUMNS)})"
    seqs = itertools.count(1)

    # Autocommit parameterised single-row inserts, one caller: one commit (fsync) per row.
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + SINGLE_SECONDS
    while (t0 := time.perf_counter()) < deadline:
        con.execute(insert, _plain_row(next(seqs)))
        latencies.append(time.perf_counter() - t0)
    single_rate = len(latencies) / (time.perf_counter() - start)

    # The same from many threads, each on its own cursor: what concurrency buys without
    # group commit.
    threads = PLAIN_THREADS
    counts = [0] * threads
    thread_lat: list[list[float]] = [[] for _ in range(threads)]
    cursors = [con.cursor() for _ in range(threads)]
    start = time.perf_counter()
    deadline = start + CONCURRENT_SECONDS

    def body(i: int) -> None:
        cur = cursors[i]
        while (t0 := time.perf_counter()) < deadline:
            cur.execute(insert, _plain_row(next(seqs)))
            thread_lat[i].append(time.perf_counter() - t0)
            counts[i] += 1

    _run_threads(threads, body)
    concurrent_rate = sum(counts) / (time.perf_counter() - start)
    for cur in cursors:
        cur.close()

    # One big Arrow insert, end to end from Python rows (building the columns included).
    first = next(seqs)
    start = time.perf_counter()
    rows = [_plain_row(first + i) for i in range(PLAIN_BULK_ROWS)]
    table = pa.table(
        {
            name: pa.array([r[j] for r in rows], type=_ARROW_TYPES[kind])
            for j, (name, kind) in enumerate(_PLAIN_COLUMNS)
        }
    )
    built = time.perf_counter()
    con.register("bulk", table)
    con.execute("INSERT INTO plain_audit SELECT * FROM bulk")
    con.unregister("bulk")
    done = time.perf_counter()
    con.close()
    return {
        "autocommit_single_per_s": round(single_rate),
        "autocommit_single_latency": _latency(latencies),
        f"autocommit_{threads}_threads_per_s": round(concurrent_rate),
        f"autocommit_{threads}_threads_latency": _latency([x for lat in thread_lat for x in lat]),
        "arrow_bulk_end_to_end_rows_per_s": round(PLAIN_BULK_ROWS / (done - start)),
        "arrow_bulk_insert_only_rows_per_s": round(PLAIN_BULK_ROWS / (done - built)),
    }


def _plain_read(db: Path) -> dict[str, Any]:
    """How fast the chained rows can merely be read back into Python, for the verify ratio.

    ``ts`` is read as epoch microseconds, as verify reads it: converting 200,000
    TIMESTAMPTZ values to Python datetimes takes longer than verifying them,
    which would flatter verify. The second figure is verify's own query (the
    canonical text built in SQL) without the HMAC loop: the SQL share of verify.
    """
    from hmi.store.verify import canonical_sql

    cols = ", ".join(
        f"epoch_us({name})" if kind is Kind.TIMESTAMP else name for name, kind in _PLAIN_COLUMNS
    )
    con = duckdb.connect(str(db), read_only=True)
    try:
        start = time.perf_counter()
        n = len(con.execute(f"SELECT {cols} FROM {AUDIT.name} ORDER BY seq").fetchall())
        plain = time.perf_counter() - start
        start = time.perf_counter()
        con.execute(
            f"SELECT seq, digest, {canonical_sql(AUDIT)} FROM {AUDIT.name} ORDER BY seq"
        ).fetchall()
        canonical = time.perf_counter() - start
    finally:
        con.close()
    return {
        "read_all_columns_rows_per_s": round(n / plain),
        "verify_query_fetch_only_rows_per_s": round(n / canonical),
    }


# -- the store ------------------------------------------------------------------


class _BatchCounter:
    """Counts the writer's commits, to show how many callers share each one."""

    def __init__(self, store: Store) -> None:
        self.commits = 0
        self.jobs = 0
        inner = store._commit

        def counting(batch: list[Any]) -> None:
            self.commits += 1
            self.jobs += len(batch)
            inner(batch)

        store._commit = counting  # type: ignore[method-assign]

    def snapshot(self) -> tuple[int, int]:
        return self.commits, self.jobs


def _append_event(tx: WriteTx) -> object:
    return tx.append(AUDIT, EVENT)


def _single(store: Store) -> dict[str, Any]:
    """(a) One caller, one event at a time, each waited for."""
    for _ in range(50):  # warm-up: first statements plan and allocate
        store.append(AUDIT, EVENT)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + SINGLE_SECONDS
    while (t0 := time.perf_counter()) < deadline:
        store.append(AUDIT, EVENT)
        latencies.append(time.perf_counter() - t0)
    rate = len(latencies) / (time.perf_counter() - start)
    return {"events_per_s": round(rate), **_latency(latencies), "events": len(latencies)}


def _threads(store: Store, counter: _BatchCounter, n: int) -> dict[str, Any]:
    """(b) ``n`` callers each appending in a loop; each blocks until its row is durable."""
    per_thread: list[list[float]] = [[] for _ in range(n)]
    c0, j0 = counter.snapshot()
    start = time.perf_counter()
    deadline = start + CONCURRENT_SECONDS

    def body(i: int) -> None:
        lat = per_thread[i]
        while (t0 := time.perf_counter()) < deadline:
            store.append(AUDIT, EVENT)
            lat.append(time.perf_counter() - t0)

    _run_threads(n, body)
    elapsed = time.perf_counter() - start
    c1, j1 = counter.snapshot()
    latencies = [x for lat in per_thread for x in lat]
    return {
        "events_per_s": round(len(latencies) / elapsed),
        **_latency(latencies),
        "mean_jobs_per_commit": round((j1 - j0) / max(1, c1 - c0), 1),
    }


def _in_flight(store: Store, counter: _BatchCounter, window: int) -> dict[str, Any]:
    """(b) One producer keeping ``window`` submit() futures in flight (an async caller's shape).

    Latency is from submit() to the moment the writer resolves the future.
    """
    slots = threading.Semaphore(window)
    latencies: list[float] = []
    futures: list[Future[Any]] = []
    c0, j0 = counter.snapshot()
    start = time.perf_counter()
    deadline = start + CONCURRENT_SECONDS
    while (t0 := time.perf_counter()) < deadline:
        slots.acquire()

        def resolved(_f: Future[Any], t0: float = t0) -> None:
            latencies.append(time.perf_counter() - t0)
            slots.release()

        fut = store.submit(_append_event)
        fut.add_done_callback(resolved)
        futures.append(fut)
    for fut in futures:
        fut.result(timeout=60)
    elapsed = time.perf_counter() - start
    c1, j1 = counter.snapshot()
    return {
        "events_per_s": round(len(futures) / elapsed),
        **_latency(latencies),
        "mean_jobs_per_commit": round((j1 - j0) / max(1, c1 - c0), 1),
    }


def _fill(store: Store, rows: int) -> dict[str, Any]:
    """Append ``rows`` chained rows in large write jobs (the Arrow path), for the verify run."""

    def job(tx: WriteTx) -> None:
        for _ in range(FILL_JOB_ROWS):
            tx.append(AUDIT, EVENT)

    start = time.perf_counter()
    for _ in range(rows // FILL_JOB_ROWS):
        store.write(job, timeout=120)
    elapsed = time.perf_counter() - start
    return {"rows_per_s": round(rows / elapsed), "rows": rows, "job_rows": FILL_JOB_ROWS}


def _verify(root: Path) -> dict[str, Any]:
    """(c) ``hmi verify`` on the stopped store; best of two (the first warms the page cache)."""
    runs = []
    report = None
    for _ in range(2):
        start = time.perf_counter()
        report = verify_data_dir(root)
        runs.append(time.perf_counter() - start)
    assert report is not None
    rows = sum(report.rows.values())
    return {
        "rows_per_s": round(rows / min(runs)),
        "rows": rows,
        "seconds": [round(r, 3) for r in runs],
        "ok": report.ok,
        "summary": report.summary(),
    }


def run() -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="custos-bench-store-"))
    try:
        plain = _plain_baseline(tmp)
        os.remove(tmp / "plain.duckdb")
        data = tmp / "data"
        store = Store.create(data)
        try:
            counter = _BatchCounter(store)
            single = _single(store)
            threads = {f"{n}_threads": _threads(store, counter, n) for n in THREAD_COUNTS}
            in_flight = {
                f"{n}_futures_in_flight": _in_flight(store, counter, n) for n in IN_FLIGHT
            }
            fill = _fill(store, FILL_ROWS)
        finally:
            store.close()
        verify = _verify(data)
        scan = _plain_read(data / "hmi.duckdb")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    concurrent = {**threads, **in_flight}
    judged = {
        k: v
        for k, v in concurrent.items()
        if k in (f"{GOAL_CALLERS}_threads", f"{GOAL_CALLERS}_futures_in_flight")
    }
    worst_rate = min(c["events_per_s"] for c in judged.values())
    worst_p99 = max(c["p99_ms"] for c in judged.values())
    best_rate = max(c["events_per_s"] for c in concurrent.values())
    plain_threads = plain[f"autocommit_{PLAIN_THREADS}_threads_per_s"]
    figures = {
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "plain_duckdb": plain,
        "a_single_caller": single,
        "b_concurrent": concurrent,
        "c_fill_through_store": fill,
        "c_verify": verify,
        "c_plain_read": scan,
        "ratios": {
            "a_single_vs_plain_autocommit": _ratio(
                single["events_per_s"], plain["autocommit_single_per_s"]
            ),
            "a_p50_latency_vs_plain_autocommit": _ratio(
                single["p50_ms"], plain["autocommit_single_latency"]["p50_ms"]
            ),
            "b_64_callers_worst_vs_plain_autocommit_single": _ratio(
                worst_rate, plain["autocommit_single_per_s"]
            ),
            f"b_64_callers_worst_vs_plain_autocommit_{PLAIN_THREADS}_threads": _ratio(
                worst_rate, plain_threads
            ),
            "b_best_vs_plain_arrow_end_to_end": _ratio(
                best_rate, plain["arrow_bulk_end_to_end_rows_per_s"]
            ),
            "c_fill_vs_plain_arrow_end_to_end": _ratio(
                fill["rows_per_s"], plain["arrow_bulk_end_to_end_rows_per_s"]
            ),
            "c_verify_vs_plain_read": _ratio(
                verify["rows_per_s"], scan["read_all_columns_rows_per_s"]
            ),
        },
    }
    goals = {
        "a: single caller events/s": {
            "target": f">= {GOAL_SINGLE:,.0f}",
            "measured": single["events_per_s"],
            "met": single["events_per_s"] >= GOAL_SINGLE,
        },
        f"b: events/s, {GOAL_CALLERS} callers (worse of threads, futures)": {
            "target": f">= {GOAL_CONCURRENT:,.0f}",
            "measured": worst_rate,
            "met": worst_rate >= GOAL_CONCURRENT,
        },
        f"b: p99 commit latency ms, {GOAL_CALLERS} callers (worse of threads, futures)": {
            "target": f"< {GOAL_P99_MS:g}",
            "measured": worst_p99,
            "met": worst_p99 < GOAL_P99_MS,
        },
        "c: verify rows/s": {
            "target": f">= {GOAL_VERIFY:,.0f} over >= 200,000 rows",
            "measured": verify["rows_per_s"],
            "met": verify["ok"]
            and verify["rows"] >= 200_000
            and verify["rows_per_s"] >= GOAL_VERIFY,
        },
    }
    return {"name": "store", "figures": figures, "goals": goals}
