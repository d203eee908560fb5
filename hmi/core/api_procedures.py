"""The procedure side of the Terminal API: runs as a screen shows them, actions as commands.

Every action passes the terminal check first (``run_procedure`` must be
allowed at the terminal, and the session used where it began), then the
sequencer's own checks; a refusal is recorded before the person sees it.
``view`` answers for one session: the step list with what is done, what
the current step still needs, and each action allowed now or why not, so
a screen never offers what the core would refuse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from hmi.core.api_refusals import record_refusal
from hmi.core.api_types import FieldView, ProcedureInfo, RunView, StepView
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.core.identity import Session
from hmi.core.ports import Recorder
from hmi.core.preconditions import Reader, evaluate
from hmi.core.records import Origin
from hmi.core.runs import Run, RunState
from hmi.core.sequencer import PERMISSION, Sequencer
from hmi.core.terminals import TerminalConfig, check_terminal

T = TypeVar("T")
OPEN = (RunState.IDLE, RunState.RUNNING, RunState.HELD)


def _steps(run: Run, read: Reader) -> tuple[StepView, ...]:
    out = []
    for i, step in enumerate(run.procedure.steps):
        current = i == run.step_index and run.state in OPEN
        done = i < run.step_index or run.state is RunState.COMPLETE
        status = "current" if current else "done" if done else "pending"
        conditions: tuple[tuple[str, bool, str], ...] = ()
        signatures = tuple(f"{s.meaning} ({s.role})" for s in step.signatures)
        fields = []
        for f in step.data:
            value = run.data.get(f.name) if current else None
            fields.append(
                FieldView(
                    f.name,
                    f.shown,
                    f.type,
                    f.units,
                    tuple(f.choices),
                    f.min,
                    f.max,
                    f.pattern,
                    value,
                )
            )
        if current:
            verdicts = [evaluate(c, read) for c in run.procedure.conditions(i)]
            conditions = tuple(
                (text, v.ok, v.reason) for text, v in zip(step.preconditions, verdicts, strict=True)
            )
            given = [
                f"{g.meaning} ({g.role}): {g.signer_name} ({g.signer_id})" for g in run.signatures
            ]
            signatures = (*given, *(f"{m} ({r})" for _, m, r in run.unsigned()))
        out.append(
            StepView(
                i + 1,
                step.id,
                step.title,
                status,
                step.time_limit_s,
                tuple(step.commands),
                signatures,
                conditions,
                tuple(fields),
            )
        )
    return tuple(out)


class ProcedureDesk:
    def __init__(
        self, sequencer: Sequencer, terminals: list[TerminalConfig], recorder: Recorder
    ) -> None:
        self.sequencer = sequencer
        self.identity = sequencer.identity
        self.terminals = terminals
        self.recorder = recorder

    # -- what a terminal shows ------------------------------------------------------------

    def procedures(self, session: Session) -> list[ProcedureInfo]:
        self.identity.require_session(session)
        return [
            ProcedureInfo(p.id, p.title, p.version, tuple(s.title for s in p.steps))
            for p in sorted(self.sequencer.procedures.values(), key=lambda p: p.title)
        ]

    def runs(self, session: Session, *, include_finished: bool = False) -> list[RunView]:
        """Runs not yet complete or aborted (all of this runtime's with ``include_finished``)."""
        self.identity.require_session(session)
        runs = sorted(self.sequencer.runs.values(), key=lambda r: r.created_at)
        return [self._view(r, session) for r in runs if include_finished or r.state in OPEN]

    def view(self, session: Session, run_id: str) -> RunView:
        self.identity.require_session(session)
        return self._view(self.sequencer.run(run_id), session)

    def _view(self, run: Run, session: Session) -> RunView:
        return RunView(
            run.run_id,
            run.procedure.id,
            run.procedure.title,
            run.procedure.version,
            run.state.value,
            run.step_number,
            run.step.title,
            run.created_at,
            run.step_started_at,
            run.overdue_reported,
            _steps(run, self.sequencer.tags.get),
            tuple(self.sequencer.what_now(run.run_id, session)),
        )

    # -- what a terminal may do -------------------------------------------------------------

    async def _act(
        self,
        session: Session,
        origin: Origin,
        action: str,
        target: str,
        do: Callable[[], Awaitable[T]],
        reason: str | None = None,
    ) -> T:
        """The terminal check, then ``do``; a terminal refusal is recorded here, the
        sequencer records its own."""
        try:
            current = self.identity.require_permission(session, PERMISSION)
            check_terminal(self.terminals, current.origin, origin, PERMISSION, None)
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, f"procedure_{action}", target, exc, reason
            ) from None
        return await do()

    async def start(self, session: Session, origin: Origin, procedure_id: str) -> RunView:
        """Create a run of ``procedure_id`` and start its first step."""
        seq = self.sequencer

        async def do() -> Run:
            run = await seq.create_run(session, procedure_id)
            await seq.start(session, run.run_id)
            return run

        run = await self._act(session, origin, "start", procedure_id, do)
        return self._view(run, session)

    async def enter_data(
        self, session: Session, origin: Origin, run_id: str, name: str, value: object
    ) -> RunView:
        seq = self.sequencer
        await self._act(
            session,
            origin,
            "enter_data",
            run_id,
            lambda: seq.enter_data(session, run_id, name, value),
        )
        return self.view(session, run_id)

    async def sign(
        self,
        session: Session,
        origin: Origin,
        run_id: str,
        meaning: str,
        signature: Credentials,
        reason: str,
    ) -> RunView:
        """The logged-in user gives one of the current step's signatures."""
        seq = self.sequencer
        await self._act(
            session,
            origin,
            "sign",
            run_id,
            lambda: seq.sign_step(
                session,
                run_id,
                meaning,
                signature.password,
                reason=reason,
                user_id=signature.user_id,
            ),
            reason,
        )
        return self.view(session, run_id)

    async def witness(
        self,
        session: Session,
        origin: Origin,
        run_id: str,
        meaning: str,
        witness: Credentials,
        reason: str,
    ) -> RunView:
        """A second person signs at this terminal; the logged-in user stays logged in."""
        if witness.user_id is None:
            raise HmiError("The second signer gives user ID and password.")
        seq, user_id = self.sequencer, witness.user_id
        await self._act(
            session,
            origin,
            "witness",
            run_id,
            lambda: seq.witness_step(
                session, run_id, meaning, user_id, witness.password, reason=reason
            ),
            reason,
        )
        return self.view(session, run_id)

    async def complete_step(self, session: Session, origin: Origin, run_id: str) -> RunView:
        seq = self.sequencer
        await self._act(
            session, origin, "complete_step", run_id, lambda: seq.complete_step(session, run_id)
        )
        return self.view(session, run_id)

    async def transition(
        self,
        session: Session,
        origin: Origin,
        run_id: str,
        action: str,
        reason: str,
        signature: Credentials,
    ) -> RunView:
        """``hold``, ``restart`` or ``abort``: each with a reason and the user's signature."""
        seq = self.sequencer
        acts = {"hold": seq.hold, "restart": seq.restart, "abort": seq.abort}
        act = acts.get(action)
        if act is None:
            raise HmiError(f"'{action}' is not a run action; use hold, restart or abort.")
        await self._act(
            session,
            origin,
            action,
            run_id,
            lambda: act(session, run_id, reason, signature.password, signature.user_id),
            reason,
        )
        return self.view(session, run_id)
