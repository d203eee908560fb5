"""Open runs read back from their chained records, and restored into a sequencer.

A run is open while its latest ``procedure_runs`` record leaves it neither
complete nor aborted. Its run and step records are returned each in their
table's sequence order, which is the order they were committed in; the two
tables are replayed separately (``hmi.core.run_replay``), so no order
between them has to be assumed from equal timestamps. Reads use a reader
cursor in a worker thread, never the writer's connection.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from hmi.core.run_replay import Rebuilt, RecordedRun, rebuild
from hmi.core.runs import Actor, Run, RunEvent, StepEvent
from hmi.core.sequencer import Sequencer
from hmi.store.db import Store
from hmi.store.tables import PROCEDURE_RUNS, STEP_EVENTS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_OPEN = f"""
    SELECT run_id FROM {PROCEDURE_RUNS.name}
    GROUP BY run_id
    HAVING arg_max(state_to, seq) NOT IN ('complete', 'aborted')
"""

_RUN_ROWS = f"""
    SELECT epoch_us(ts), run_id, procedure_id, procedure_version, procedure_title, event,
           state_from, state_to, step_index, step_id, actor_id, actor_name, terminal_id, source,
           reason, signature_ids
    FROM {PROCEDURE_RUNS.name} WHERE run_id IN ({_OPEN}) ORDER BY seq
"""

_STEP_ROWS = f"""
    SELECT epoch_us(ts), run_id, procedure_id, step_index, step_id, step_title, event, outcome,
           action, field, value, meaning, signature_ids, reason, actor_id, actor_name,
           terminal_id, source
    FROM {STEP_EVENTS.name} WHERE run_id IN ({_OPEN}) ORDER BY seq
"""


def _ts(epoch_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(epoch_us))


def _ids(text: str | None) -> tuple[str, ...]:
    return tuple(filter(None, (text or "").split(",")))


def _run_event(r: Sequence[Any]) -> RunEvent:
    actor = Actor(r[10], r[11], r[12], r[13])
    return RunEvent(r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]), r[9], actor, r[14],
                    _ids(r[15]))  # fmt: skip


def _step_event(r: Sequence[Any]) -> StepEvent:
    actor = Actor(r[14], r[15], r[16], r[17])
    return StepEvent(r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7], actor, r[8], r[9], r[10],
                     r[11], _ids(r[12]), r[13])  # fmt: skip


def read_open_runs(cur: duckdb.DuckDBPyConnection) -> list[RecordedRun]:
    """Every run not complete or aborted, with its records, oldest run first."""
    runs: dict[str, list[tuple[datetime, RunEvent]]] = defaultdict(list)
    steps: dict[str, list[tuple[datetime, StepEvent]]] = defaultdict(list)
    for row in cur.execute(_RUN_ROWS).fetchall():
        runs[row[1]].append((_ts(row[0]), _run_event(row)))
    for row in cur.execute(_STEP_ROWS).fetchall():
        steps[row[1]].append((_ts(row[0]), _step_event(row)))
    return [RecordedRun(run_id, tuple(events), tuple(steps[run_id]))
            for run_id, events in runs.items()]  # fmt: skip


async def open_runs(store: Store) -> list[RecordedRun]:
    def read() -> list[RecordedRun]:
        with store.reader() as cur:
            return read_open_runs(cur)

    return await asyncio.to_thread(read)


async def restore_runs(store: Store, sequencer: Sequencer) -> list[Run]:
    """At start-up: rebuild every open run and hand it to ``sequencer`` (each one recorded)."""
    rebuilt: list[Rebuilt] = [rebuild(r, sequencer.procedures) for r in await open_runs(store)]
    return await sequencer.restore(rebuilt)
