"""Alarm flood: does the engine journal 1,000 alarm transitions per second without losing one?

An alarm flood is when the journal matters most and when the disk is
busiest, so the engine is driven the way the scanner drives it (tag changes
on one thread, journal rows queued with ``record_soon``) and every
transition it emitted must be a row in ``alarm_journal`` afterwards. Three
runs, all against a fresh data directory each:

* paced: 1,000 transitions/s for a few seconds, as a flood would arrive;
  the goal is that the producer keeps its pace (the engine never makes the
  scan path wait) and every transition is journaled, verify passing;
* unpaced: as fast as the engine goes, which shows the head-room;
* baseline: the same number of journal rows appended straight to the store
  (no engine), and plain DuckDB single-row inserts of the same columns, so
  the figures can be compared across noisy machines as ratios.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from hmi.core.alarm_config import AlarmConfig
from hmi.core.alarms import SYSTEM, AlarmEngine, AlarmState, AlarmTransition
from hmi.core.tags import Quality, TagChange
from hmi.store.alarm_journal import StoreAlarmJournal, journal_row
from hmi.store.db import Store
from hmi.store.tables import ALARM_JOURNAL
from hmi.store.verify import verify_data_dir

TAGS = 200
RATE = 1_000
PACED_SECONDS = 5.0
UNPACED_TRANSITIONS = 20_000
PLAIN_SECONDS = 2.0


def _engine(store: Store) -> tuple[AlarmEngine, StoreAlarmJournal, list[AlarmTransition]]:
    configs = [
        AlarmConfig(tag=f"T{i:03}", kind="discrete", priority=1 + i % 4) for i in range(TAGS)
    ]
    journal = StoreAlarmJournal(store)
    engine = AlarmEngine(configs, journal=journal)
    seen: list[AlarmTransition] = []
    engine.listeners.append(seen.append)
    return engine, journal, seen


def _change(i: int) -> TagChange:
    """Tag i % TAGS toggles on each visit: every change is one transition."""
    now = datetime.now(UTC)
    value = (i // TAGS) % 2 == 0
    return TagChange(f"T{i % TAGS:03}", value, Quality.GOOD, now, now, "device:BENCH")


def _journal_rows(root: Path) -> int:
    con = duckdb.connect(str(root / "hmi.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM alarm_journal").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def _run_engine(root: Path, count: int, rate: float | None) -> dict[str, Any]:
    store = Store.create(root)
    engine, journal, seen = _engine(store)
    lag_max = 0.0
    start = time.perf_counter()
    for i in range(count):
        if rate is not None:
            due = start + i / rate
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            else:
                lag_max = max(lag_max, now - due)
        engine.on_change(_change(i))
    produced = time.perf_counter() - start
    journal.flush()
    drained = time.perf_counter() - start
    store.close()
    rows = _journal_rows(root)
    report = verify_data_dir(root)
    return {
        "transitions": len(seen),
        "journal_rows": rows,
        "lost": len(seen) - rows,
        "produce_s": round(produced, 3),
        "durable_s": round(drained, 3),
        "transitions_per_s": round(len(seen) / drained),
        "producer_max_lag_ms": round(lag_max * 1000, 2),
        "verify_ok": report.ok,
        "journal_failures": journal.failures,
    }


def _store_only(root: Path, count: int) -> float:
    """The same rows appended straight to the store, one job per transition, no engine."""
    store = Store.create(root)
    row = journal_row(
        AlarmTransition(
            datetime.now(UTC),
            "X",
            "X",
            "discrete",
            "activate",
            AlarmState.NORMAL,
            AlarmState.UNACK_ACTIVE,
            "True",
            None,
            None,
            1,
            "X is True",
            SYSTEM,
        )
    )
    start = time.perf_counter()
    futures = [store.submit(lambda tx: tx.append(ALARM_JOURNAL, row)) for _ in range(count)]
    for f in futures:
        f.result()
    elapsed = time.perf_counter() - start
    store.close()
    return count / elapsed


def _plain_duckdb(root: Path) -> float:
    """Autocommit single-row inserts of the journal's columns: what a naive writer manages."""
    root.mkdir(parents=True)
    con = duckdb.connect(str(root / "plain.duckdb"))
    cols = [n for n, _ in ALARM_JOURNAL.columns]
    con.execute(f"CREATE TABLE j ({', '.join(f'{c} VARCHAR' for c in cols)}, digest BLOB)")
    sql = f"INSERT INTO j VALUES ({', '.join('?' for _ in cols)}, ?)"
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < PLAIN_SECONDS:
        con.execute(sql, [str(n)] * len(cols) + [b"x" * 32])
        n += 1
    elapsed = time.perf_counter() - start
    con.close()
    return n / elapsed


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-alarms-"))
    try:
        paced = _run_engine(tmp / "paced", int(RATE * PACED_SECONDS), RATE)
        unpaced = _run_engine(tmp / "unpaced", UNPACED_TRANSITIONS, None)
        store_only = _store_only(tmp / "store", UNPACED_TRANSITIONS)
        plain = _plain_duckdb(tmp / "plain")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Keeping pace: the flood took no longer than its schedule plus one second to be durable.
    kept_pace = paced["durable_s"] <= PACED_SECONDS + 1.0
    met = kept_pace and paced["lost"] == 0 and paced["verify_ok"]
    return {
        "name": "alarms",
        "figures": {
            "paced_1000_per_s": paced,
            "unpaced": unpaced,
            "baseline_store_append_rows_per_s": round(store_only),
            "baseline_plain_duckdb_single_inserts_per_s": round(plain),
            "unpaced_vs_store_append": round(unpaced["transitions_per_s"] / store_only, 2),
            "unpaced_vs_plain_duckdb": round(unpaced["transitions_per_s"] / plain, 2),
        },
        "goals": {
            "1,000 transitions/s journaled, none lost": {
                "target": f"{RATE}/s for {PACED_SECONDS:g} s, 0 lost, durable by schedule + 1 s",
                "measured": (
                    f"{paced['transitions']} transitions, {paced['lost']} lost, durable after "
                    f"{paced['durable_s']} s; unpaced {unpaced['transitions_per_s']}/s"
                ),
                "met": met,
            }
        },
    }
