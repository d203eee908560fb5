"""Runs rebuilt from their records after a restart (SUP-7, 11.10(f)).

The sequencer keeps a run's present in memory; the store keeps its whole
history as chained ``procedure_runs`` and ``step_events`` rows. After a
restart the present is rebuilt by replaying that history against the
procedure definitions, exactly as the sequencer would have applied it:
state transitions through the same transition table, steps only forward,
data and signatures of the current step only. Nothing is inferred that the
records do not say.

If the definition the run was recorded with is no longer the one
configured (another version, a step id that is gone or moved, a signature
the step does not ask for), replaying it would be a guess about what the
run now means. Such a run is rebuilt from its records alone, against a
stand-in procedure made of the recorded step ids and titles, and held with
the reason; it can then only be aborted (by a supervisor, with a reason and
signature), never restarted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from hmi.core.procedure_config import Procedure, Step
from hmi.core.runs import GivenSignature, Run, RunEvent, RunState, SequenceError, StepEvent

RUN_TRANSITIONS = {
    "started": "start",
    "held": "hold",
    "restarted": "restart",
    "aborted": "abort",
    "completed": "complete",
}
"""Recorded run event → the transition the sequencer applied (``created`` and ``resumed``
are not transitions: one makes the run, the other is written by ``Sequencer.restore``)."""

FINAL_STATES = (RunState.COMPLETE, RunState.ABORTED)


@dataclass(frozen=True)
class RecordedRun:
    """Everything recorded about one run, each table in its own chain order."""

    run_id: str
    run_events: Sequence[tuple[datetime, RunEvent]]
    step_events: Sequence[tuple[datetime, StepEvent]]


@dataclass(frozen=True)
class Rebuilt:
    """A run as it stood when the runtime stopped, and the state its records ended in."""

    run: Run
    recorded_state: RunState
    problem: str | None = None
    """Why the run could not be replayed against its definition (it is then held)."""


class ReplayError(Exception):
    """The records do not replay against the configured definition; the message says why."""


def rebuild(recorded: RecordedRun, procedures: Mapping[str, Procedure]) -> Rebuilt:
    """The run of ``recorded``, replayed against ``procedures`` (see the module docstring)."""
    if not recorded.run_events or recorded.run_events[0][1].event != "created":
        raise ValueError(f"run {recorded.run_id} has no 'created' record to start from")
    first = recorded.run_events[0][1]
    last_state = RunState(recorded.run_events[-1][1].state_to)
    proc = procedures.get(first.procedure_id)
    try:
        if proc is None:
            raise ReplayError(f"procedure {first.procedure_id!r} is no longer configured")
        if proc.version != first.procedure_version:
            raise ReplayError(
                f"'{proc.title}' is now version {proc.version}; the run was recorded with "
                f"version {first.procedure_version}"
            )
        return Rebuilt(replay(recorded, proc), last_state)
    except ReplayError as exc:
        problem = str(exc)
    abort_roles = proc.abort_roles if proc is not None else None
    return Rebuilt(as_recorded(recorded, abort_roles), last_state, problem)


def replay(recorded: RecordedRun, proc: Procedure) -> Run:
    """Apply every recorded event to a new run of ``proc``; ReplayError where one does not fit."""
    created_at, first = recorded.run_events[0]
    run = Run(recorded.run_id, proc, RunState.IDLE, created_at)
    _check_step(proc, first.step_index, first.step_id)
    for _, ev in recorded.run_events[1:]:
        _check_step(proc, ev.step_index, ev.step_id)
        if ev.state_from != run.state.value:
            raise ReplayError(
                f"the record '{ev.event}' starts from {ev.state_from}, but the run was "
                f"{run.state.value}"
            )
        if ev.event == "resumed":
            run.state = RunState(ev.state_to)
            continue
        name = RUN_TRANSITIONS.get(ev.event)
        if name is None:
            raise ReplayError(f"the run event '{ev.event}' is not one the sequencer writes")
        try:
            run.transition(name)
        except SequenceError as exc:
            raise ReplayError(exc.message) from None
    for ts, sev in recorded.step_events:
        _check_step(proc, sev.step_index, sev.step_id)
        _apply_step_event(run, ts, sev)
    return run


def _check_step(proc: Procedure, index: int, step_id: str) -> None:
    if index >= len(proc.steps) or proc.steps[index].id != step_id:
        raise ReplayError(
            f"step {index + 1} of the run was '{step_id}', which is not step {index + 1} of "
            f"'{proc.title}' as now configured"
        )


def _apply_step_event(run: Run, ts: datetime, ev: StepEvent) -> None:
    if ev.event == "started":
        try:
            run.begin_step(ev.step_index, ts)
        except SequenceError as exc:
            raise ReplayError(exc.message) from None
        return
    if ev.event in ("completed", "refused") or ev.outcome != "done":
        return  # a completion is followed by the next start; a refusal changed nothing
    if ev.step_index != run.step_index:
        raise ReplayError(
            f"a '{ev.event}' record names step {ev.step_index + 1}, but the run was in "
            f"{run.step_name()}"
        )
    if ev.event == "data" and ev.field is not None and ev.value is not None:
        run.data[ev.field] = ev.value
    elif ev.event == "signed":
        run.signatures.append(_given(run, ev))
    elif ev.event == "overdue":
        run.overdue_reported = True


def _given(run: Run, ev: StepEvent) -> GivenSignature:
    """The signature of a ``signed`` record, under the one role the step leaves for it.

    The record names the meaning and the signer, not the role. A step that
    still needs the meaning from two different roles leaves it open which one
    was given, and the replay does not guess.
    """
    meaning = ev.meaning or ""
    roles = {role for _, m, role in run.unsigned() if m == meaning}
    if len(roles) != 1:
        why = "asks for no further" if not roles else "asks for it from more than one role, as"
        raise ReplayError(f"a '{meaning}' signature is recorded, and {run.step_name()} {why} "
                          f"'{meaning}' signature")  # fmt: skip
    return GivenSignature(
        meaning, roles.pop(), ev.actor.actor_id or "", ev.actor.actor_name or "",
        ev.signature_ids[0] if ev.signature_ids else "",
    )  # fmt: skip


def as_recorded(recorded: RecordedRun, abort_roles: Sequence[str] | None = None) -> Run:
    """The run rebuilt from its records alone, held, on a stand-in of the recorded steps.

    The stand-in keeps the recorded procedure id, title, version and step
    ids, so that an abort is recorded against what the run really was; its
    steps ask for nothing, since what they asked for is no longer known.
    """
    created_at, first = recorded.run_events[0]
    steps: dict[int, tuple[str, str]] = {}
    for _, ev in recorded.run_events:
        steps.setdefault(ev.step_index, (ev.step_id, ev.step_id))
    for _, sev in recorded.step_events:
        steps[sev.step_index] = (sev.step_id, sev.step_title)
    index = max(steps)
    stand_in = Procedure.model_validate(
        {
            "id": first.procedure_id,
            "title": first.procedure_title,
            "version": first.procedure_version,
            "steps": _stand_in_steps(steps, index),
            **({"abort_roles": list(abort_roles)} if abort_roles else {}),
        }
    )
    run = Run(recorded.run_id, stand_in, RunState.HELD, created_at, step_index=index)
    for ts, sev in recorded.step_events:
        if sev.step_index != index or sev.outcome != "done":
            continue
        if sev.event == "started":
            run.step_started_at = ts
        elif sev.event == "data" and sev.field is not None and sev.value is not None:
            run.data[sev.field] = sev.value
        elif sev.event == "signed":
            run.signatures.append(
                GivenSignature(sev.meaning or "", "", sev.actor.actor_id or "",
                               sev.actor.actor_name or "", ",".join(sev.signature_ids))
            )  # fmt: skip
        elif sev.event == "overdue":
            run.overdue_reported = True
    return run


def _stand_in_steps(steps: Mapping[int, tuple[str, str]], last: int) -> list[Step]:
    out: list[Step] = []
    used: set[str] = set()
    for i in range(last + 1):
        step_id, title = steps.get(i, (f"step-{i + 1}", f"Step {i + 1} (not recorded)"))
        while step_id in used:
            step_id += "-again"
        used.add(step_id)
        out.append(Step(id=step_id, title=title))
    return out
