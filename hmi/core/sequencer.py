"""The sequencer: procedures run step by step, and commands only in their step (SUP-7).

21 CFR 11.10(f) asks for operational checks that enforce the permitted
sequencing of steps. Here a run completes a step only when the step's
preconditions hold on GOOD tag values, its data is entered and its
signatures are given, each by a person with the required role and no person
twice; the command service asks ``gate`` before any command so a command
outside its step is refused with a message naming the step where it
belongs. ``what_now`` answers the same questions without acting, so a
screen can grey out what is not allowed and say why. Every action and
every refusal is recorded before the caller hears of it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any, Protocol

from hmi.core.clock import Clock
from hmi.core.errors import HmiError
from hmi.core.esign import ESignService, Signature, SignatureRequest
from hmi.core.identity import IdentityService, Session
from hmi.core.procedure_config import Procedure
from hmi.core.records import NotificationEntry, Record
from hmi.core.run_replay import Rebuilt
from hmi.core.runs import (
    SYSTEM,
    Actor,
    GivenSignature,
    Run,
    RunEvent,
    RunState,
    SequenceError,
    StepEvent,
    validate_value,
)
from hmi.core.step_rules import (
    Choice,
    choices,
    gate_reason,
    require_running,
    signable,
    step_blockers,
    transition_check,
)
from hmi.core.tag_table import TagTable

PERMISSION = "run_procedure"
ProcedureRecord = Record | RunEvent | StepEvent


class ProcedureRecorder(Protocol):
    async def commit(self, records: Sequence[ProcedureRecord]) -> list[object]:
        """Write all ``records`` in one transaction (``hmi.store.procedures``)."""
        ...


@dataclass(frozen=True)
class Overdue:
    run_id: str
    procedure_title: str
    step_number: int
    step_title: str
    limit_s: float
    message: str


def _adopt(run: Run, draft: Run) -> None:
    """Make ``run`` what ``draft`` became, once the change is recorded."""
    for f in fields(run):
        setattr(run, f.name, getattr(draft, f.name))


def _actor(session: Session | None) -> Actor:
    if session is None:
        return SYSTEM
    return Actor(
        session.user_id, session.user.full_name, session.origin.terminal_id, session.origin.source
    )


class Sequencer:
    def __init__(
        self,
        procedures: Sequence[Procedure],
        tags: TagTable,
        identity: IdentityService,
        esign: ESignService,
        recorder: ProcedureRecorder,
        clock: Clock,
    ) -> None:
        self.procedures: Mapping[str, Procedure] = {p.id: p for p in procedures}
        self.tags = tags
        self.identity = identity
        self.esign = esign
        self.recorder = recorder
        self.clock = clock
        self.runs: dict[str, Run] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, run_id: str) -> asyncio.Lock:
        return self._locks.setdefault(run_id, asyncio.Lock())

    # -- recording --------------------------------------------------------------------

    def _step_event(self, run: Run, event: str, actor: Actor, **details: Any) -> StepEvent:
        """A step event of the run's current step; ``details`` are StepEvent's optional fields."""
        s, outcome = run.step, details.pop("outcome", "done")
        return StepEvent(run.run_id, run.procedure.id, run.step_index, s.id, s.title, event,
                         outcome, actor, **details)  # fmt: skip

    def _run_event(
        self,
        run: Run,
        event: str,
        before: RunState | None,
        actor: Actor,
        reason: str | None = None,
        sig_ids: tuple[str, ...] = (),
    ) -> RunEvent:
        p = run.procedure
        return RunEvent(
            run.run_id,
            p.id,
            p.version,
            p.title,
            event,
            before.value if before else None,
            run.state.value,
            run.step_index,
            run.step.id,
            actor,
            reason,
            sig_ids,
        )

    async def _refuse(self, run: Run, actor: Actor, action: str, error: HmiError) -> HmiError:
        """Record a refused attempt; the caller raises the returned error."""
        event = self._step_event(
            run, "refused", actor, outcome="refused", action=action, reason=error.message
        )
        await self.recorder.commit([event])
        return error

    def run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise HmiError(f"There is no procedure run {run_id}.")
        return run

    # -- run actions ------------------------------------------------------------------

    async def create_run(self, session: Session, procedure_id: str) -> Run:
        """A new run in ``idle``; nothing happens at the plant until it is started."""
        current = self.identity.require_permission(session, PERMISSION)
        proc = self.procedures.get(procedure_id)
        if proc is None:
            raise HmiError(f"There is no procedure {procedure_id!r}.")
        run = Run(uuid.uuid4().hex, proc, RunState.IDLE, self.clock.now())
        await self.recorder.commit([self._run_event(run, "created", None, _actor(current))])
        self.runs[run.run_id] = run
        return run

    async def start(self, session: Session, run_id: str) -> None:
        async with self.lock(run_id):
            run = self.run(run_id)
            actor = _actor(self.identity.require_permission(session, PERMISSION))
            draft = replace(run)
            try:
                before, _ = draft.transition("start")
            except SequenceError as exc:
                raise await self._refuse(run, actor, "start", exc) from None
            draft.begin_step(0, self.clock.now())
            await self.recorder.commit(
                [
                    self._run_event(draft, "started", before, actor),
                    self._step_event(draft, "started", actor),
                ]
            )
            _adopt(run, draft)

    async def enter_data(self, session: Session, run_id: str, name: str, value: object) -> str:
        """Record a value for the current step; returns it as recorded."""
        async with self.lock(run_id):
            run = self.run(run_id)
            actor = _actor(self.identity.require_permission(session, PERMISSION))
            try:
                require_running(run)
                spec = next((f for f in run.step.data if f.name == name), None)
                if spec is None:
                    raise SequenceError(f"{run.step_name()} has no field {name!r}.")
                if run.signatures:
                    raise SequenceError(
                        f"{run.step_name()} is already signed; its data can no longer be changed."
                    )
                text = validate_value(spec, value)
            except SequenceError as exc:
                raise await self._refuse(run, actor, f"enter_data:{name}", exc) from None
            await self.recorder.commit(
                [self._step_event(run, "data", actor, field=name, value=text)]
            )
            run.data[name] = text
            return text

    def _request(self, run: Run, meaning: str, reason: str) -> SignatureRequest:
        data = ", ".join(f"{k}={v}" for k, v in sorted(run.data.items())) or None
        return SignatureRequest(
            "procedure_step",
            f"{run.procedure.id}/{run.step.id}",
            meaning,
            reason,
            new_value=data,
            run_id=run.run_id,
            step=f"{run.step_number} {run.step.title}",
        )

    async def sign_step(
        self,
        session: Session,
        run_id: str,
        meaning: str,
        password: str,
        *,
        reason: str,
        user_id: str | None = None,
    ) -> Signature:
        """The session's user gives one of the current step's signatures."""
        async with self.lock(run_id):
            run = self.run(run_id)
            current = self.identity.require_permission(session, PERMISSION)
            actor = _actor(current)
            try:
                role = signable(run, meaning, current.user.roles, current.user_id)
                signature, entry = await self.esign.sign(
                    current,
                    self._request(run, meaning, reason),
                    password,
                    permission=PERMISSION,
                    user_id=user_id,
                )
            except HmiError as exc:
                raise await self._refuse(run, actor, f"sign:{meaning}", exc) from None
            return await self._signed(run, signature, entry, role, actor)

    async def witness_step(
        self,
        session: Session,
        run_id: str,
        meaning: str,
        user_id: str,
        password: str,
        *,
        reason: str,
    ) -> Signature:
        """A second person signs at this session's terminal (its user stays logged in)."""
        async with self.lock(run_id):
            run = self.run(run_id)
            current = self.identity.require_session(session)
            actor = _actor(current)
            try:
                user = await self.identity.get_existing(user_id)
                if user_id == current.user_id:
                    raise SequenceError("A witness is a different person from the logged-in user.")
                role = signable(run, meaning, user.roles, user_id)
                first = run.signatures[0].signer_id if run.signatures else current.user_id
                signature, entry = await self.esign.witness(
                    self._request(run, meaning, reason),
                    user_id,
                    password,
                    current.origin,
                    permission=PERMISSION,
                    not_user=first,
                )
            except HmiError as exc:
                raise await self._refuse(run, actor, f"witness:{meaning}", exc) from None
            return await self._signed(
                run,
                signature,
                entry,
                role,
                Actor(user_id, user.full_name, current.origin.terminal_id, current.origin.source),
            )

    async def _signed(
        self, run: Run, signature: Signature, entry: Record, role: str, actor: Actor
    ) -> Signature:
        event = self._step_event(
            run, "signed", actor, meaning=signature.meaning, signature_ids=(signature.signature_id,)
        )
        await self.recorder.commit([entry, event])
        run.signatures.append(
            GivenSignature(
                signature.meaning,
                role,
                signature.signer_id,
                signature.signer_name,
                signature.signature_id,
            )
        )
        return signature

    async def complete_step(self, session: Session, run_id: str) -> None:
        """Finish the current step and begin the next (the last one completes the run)."""
        async with self.lock(run_id):
            run = self.run(run_id)
            actor = _actor(self.identity.require_permission(session, PERMISSION))
            try:
                require_running(run)
                blockers = step_blockers(run, self.tags.get)
                if blockers:
                    raise SequenceError(
                        f"{run.step_name()} cannot be completed: {'; '.join(blockers)}."
                    )
            except SequenceError as exc:
                raise await self._refuse(run, actor, "complete_step", exc) from None
            sig_ids = tuple(s.signature_id for s in run.signatures)
            records: list[ProcedureRecord] = [
                self._step_event(run, "completed", actor, signature_ids=sig_ids)
            ]
            draft = replace(run)
            if run.step_index + 1 < len(run.procedure.steps):
                draft.begin_step(run.step_index + 1, self.clock.now())
                records.append(self._step_event(draft, "started", actor))
            else:
                before, _ = draft.transition("complete")
                records.append(self._run_event(draft, "completed", before, actor))
            await self.recorder.commit(records)
            _adopt(run, draft)

    async def hold(
        self, session: Session, run_id: str, reason: str, password: str, user_id: str | None = None
    ) -> None:
        await self._signed_transition(session, run_id, "hold", reason, password, user_id)

    async def restart(
        self, session: Session, run_id: str, reason: str, password: str, user_id: str | None = None
    ) -> None:
        await self._signed_transition(session, run_id, "restart", reason, password, user_id)

    async def abort(
        self, session: Session, run_id: str, reason: str, password: str, user_id: str | None = None
    ) -> None:
        await self._signed_transition(session, run_id, "abort", reason, password, user_id)

    async def _signed_transition(
        self,
        session: Session,
        run_id: str,
        name: str,
        reason: str,
        password: str,
        user_id: str | None,
    ) -> None:
        async with self.lock(run_id):
            run = self.run(run_id)
            current = self.identity.require_permission(session, PERMISSION)
            actor = _actor(current)
            meaning = "approved" if name == "abort" else "performed"
            request = SignatureRequest(
                f"procedure_{name}",
                run.procedure.id,
                meaning,
                reason,
                old_value=run.state.value,
                run_id=run.run_id,
                step=f"{run.step_number} {run.step.title}",
            )
            try:
                if not reason.strip():
                    raise SequenceError(f"A reason is required to {name} a run.")
                transition_check(run, name, current.user.roles)
                signature, entry = await self.esign.sign(
                    current, request, password, permission=PERMISSION, user_id=user_id
                )
            except HmiError as exc:
                raise await self._refuse(run, actor, name, exc) from None
            draft = replace(run)
            before, _ = draft.transition(name)
            past = {"hold": "held", "restart": "restarted", "abort": "aborted"}[name]
            event = self._run_event(draft, past, before, actor, reason, (signature.signature_id,))
            await self.recorder.commit([entry, event])
            _adopt(run, draft)

    async def restore(self, rebuilt: Sequence[Rebuilt]) -> list[Run]:
        """Adopt runs rebuilt from their records after a restart, each with a ``resumed`` record.

        The record says the runtime restarted, and for a run that could not be
        replayed against its definition, why it is now held and may only be
        aborted. A run already known here is left alone.
        """
        adopted: list[Run] = []
        for item in rebuilt:
            run = item.run
            if run.run_id in self.runs:
                continue
            reason = "The runtime restarted; the run continues where its records end."
            if item.problem is not None:
                run.state = RunState.HELD
                run.blocked = f"{item.problem}, so it was held when the runtime restarted"
                reason = (
                    f"The runtime restarted and the run cannot continue: {item.problem}. "
                    "It is held; a supervisor may abort it with a reason."
                )
            event = self._run_event(run, "resumed", item.recorded_state, SYSTEM, reason)
            await self.recorder.commit([event])
            self.runs[run.run_id] = run
            adopted.append(run)
        return adopted

    # -- gating and guidance ------------------------------------------------------------

    async def gate(
        self, session: Session | None, run_id: str, kind: str, target: str
    ) -> str | None:
        """The current step's label if the command is allowed in it; else record and refuse."""
        async with self.lock(run_id):
            run = self.run(run_id)
            why = gate_reason(run, kind, target)
            if why is not None:
                raise await self._refuse(
                    run, _actor(session), f"{kind}:{target}", SequenceError(why)
                )
            return f"{run.step_number} {run.step.title}"

    async def tick(self) -> list[Overdue]:
        """Steps past their time limit, each reported once and recorded (supervisors notified)."""
        now = self.clock.now()
        found: list[Overdue] = []
        for run in self.runs.values():
            limit = run.step.time_limit_s
            if (
                run.state not in (RunState.RUNNING, RunState.HELD)
                or limit is None
                or run.overdue_reported
                or run.step_started_at is None
                or now - run.step_started_at <= timedelta(seconds=limit)
            ):
                continue
            msg = (
                f"'{run.procedure.title}' run {run.run_id[:8]}: {run.step_name()} has run "
                f"longer than its limit of {limit:g} s."
            )
            await self.recorder.commit(
                [
                    self._step_event(run, "overdue", SYSTEM, reason=msg),
                    NotificationEntry("supervisor", "overdue_step", msg, run.run_id),
                ]
            )
            run.overdue_reported = True
            found.append(
                Overdue(
                    run.run_id, run.procedure.title, run.step_number, run.step.title, limit, msg
                )
            )
        return found

    def what_now(self, run_id: str, session: Session) -> list[Choice]:
        """Each action and command of the run's procedure: allowed for ``session`` now, or why
        not."""
        run = self.run(run_id)
        may = session.active and self.identity.policy.permitted(session.user.roles, PERMISSION)
        return choices(
            run, session.user_id, session.user.full_name, session.user.roles, may, self.tags.get
        )
