"""The store side of the sequencer's recorder: run and step events, chained.

A step's signature, the step event that names it, and any notification are
written in one transaction with the core's other records, so a signature
never exists without the step it signs, and a refused attempt is durable
before the person is told of the refusal.
"""

from __future__ import annotations

from collections.abc import Sequence

from hmi.core.runs import Actor, RunEvent, StepEvent
from hmi.core.sequencer import ProcedureRecord
from hmi.store.recorder import StoreRecorder, apply_record
from hmi.store.tables import PROCEDURE_RUNS, STEP_EVENTS
from hmi.store.writetx import WriteTx


def _who(actor: Actor) -> dict[str, object]:
    return {
        "actor_id": actor.actor_id,
        "actor_name": actor.actor_name,
        "terminal_id": actor.terminal_id,
        "source": actor.source,
    }


def _write(tx: WriteTx, record: ProcedureRecord) -> object:
    if isinstance(record, RunEvent):
        row: dict[str, object] = {
            "run_id": record.run_id,
            "procedure_id": record.procedure_id,
            "procedure_version": record.procedure_version,
            "procedure_title": record.procedure_title,
            "event": record.event,
            "state_from": record.state_from,
            "state_to": record.state_to,
            "step_index": record.step_index,
            "step_id": record.step_id,
            **_who(record.actor),
            "reason": record.reason,
            "signature_ids": ",".join(record.signature_ids) or None,
        }
        return tx.append(PROCEDURE_RUNS, row).seq
    if isinstance(record, StepEvent):
        row = {
            "run_id": record.run_id,
            "procedure_id": record.procedure_id,
            "step_index": record.step_index,
            "step_id": record.step_id,
            "step_title": record.step_title,
            "event": record.event,
            "outcome": record.outcome,
            "action": record.action,
            "field": record.field,
            "value": record.value,
            "meaning": record.meaning,
            "signature_ids": ",".join(record.signature_ids) or None,
            "reason": record.reason,
            **_who(record.actor),
        }
        return tx.append(STEP_EVENTS, row).seq
    return apply_record(tx, record)


class ProcedureRecorder(StoreRecorder):
    """``hmi.core.sequencer.ProcedureRecorder`` on a ``Store``; also a core ``Recorder``."""

    async def commit(self, records: Sequence[ProcedureRecord]) -> list[object]:
        batch = list(records)
        return await self.store.awrite(lambda tx: [_write(tx, r) for r in batch])
