"""The Terminal API: everything a terminal may ask of the runtime, as plain data.

The TUI and a future remote protocol call only this, so what a screen can
do is exactly what is checked and recorded here. Requests and results are
plain dataclasses (easy to serialise); refusals are ``HmiError`` with text
for the person at the terminal. Every request carries the terminal's origin,
so the command service can check that the session is used where it began.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from hmi.core.approvals import ApprovalQueue, PendingCommand
from hmi.core.commands import Command, CommandService, Credentials
from hmi.core.identity import IdentityService, Session, SessionStatus
from hmi.core.records import Origin
from hmi.core.step_rules import Choice
from hmi.core.tag_table import TagTable
from hmi.core.tags import TagScalar


@dataclass(frozen=True)
class TagReading:
    tag: str
    value: TagScalar | None
    quality: str
    units: str
    time: datetime
    reason: str = ""


@dataclass(frozen=True)
class SetpointRequest:
    """Write ``value`` to ``tag``, signed; ``witness`` for a second signer at this terminal."""

    tag: str
    value: TagScalar
    reason: str
    signature: Credentials
    witness: Credentials | None = None
    kind: str = "write_setpoint"
    run_id: str | None = None
    step: str | None = None


@dataclass(frozen=True)
class CommandOutcome:
    outcome: str
    """``done`` or ``pending`` (waiting for approval)."""
    tag: str
    old_value: TagScalar | None
    new_value: TagScalar
    read_back: TagScalar | None
    signatures: tuple[str, ...]
    """Manifestations: printed name, date and time, meaning (11.50)."""
    approval_id: str | None = None


@dataclass(frozen=True)
class PendingApproval:
    approval_id: str
    requester_id: str
    requester_name: str
    terminal_id: str
    action: str
    tag: str
    old_value: TagScalar | None
    new_value: TagScalar
    units: str
    reason: str
    requested_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, item: PendingCommand) -> PendingApproval:
        return cls(
            item.approval_id,
            item.requester_id,
            item.requester_name,
            item.origin.terminal_id,
            item.prepared.command.kind,
            item.tag,
            item.old_value,
            item.new_value,
            item.units,
            item.reason,
            item.requested_at,
            item.expires_at,
        )


@dataclass(frozen=True)
class Decision:
    approval_id: str
    approve: bool
    user_id: str
    password: str
    reason: str


class Guide(Protocol):
    """What a procedure run allows now (``hmi.core.sequencer.Sequencer.what_now``)."""

    def what_now(self, run_id: str, session: Session) -> list[Choice]: ...


@dataclass
class TerminalAPI:
    identity: IdentityService
    table: TagTable
    commands: CommandService
    approvals: ApprovalQueue
    guide: Guide | None = None
    _choices: tuple[str, ...] = field(default=("write_setpoint", "operate_equipment"))

    # -- sessions ---------------------------------------------------------------------

    async def login(self, user_id: str, password: str, origin: Origin) -> Session:
        return await self.identity.login(user_id, password, origin)

    async def logout(self, session: Session) -> None:
        await self.identity.logout(session)

    def touch(self, session: Session) -> None:
        """Keyboard or mouse activity: keeps the session from timing out (SUP-10)."""
        self.identity.touch(session)

    async def change_password(self, session: Session, old: str, new: str) -> None:
        await self.identity.change_password(session, old, new)

    # -- reading ----------------------------------------------------------------------

    def read_tags(self, session: Session, names: Sequence[str] = ()) -> list[TagReading]:
        """A snapshot of ``names`` (all tags if empty); needs a live session."""
        self.identity.require_session(session)
        defs = self.table.definitions
        wanted = names or sorted(defs)
        out = []
        for name in wanted:
            v = self.table.get(name)
            units = defs[name].units if name in defs else ""
            out.append(TagReading(name, v.value, v.quality.value, units, v.server_time, v.reason))
        return out

    # -- commands ---------------------------------------------------------------------

    async def request_write(
        self, session: Session, origin: Origin, request: SetpointRequest
    ) -> CommandOutcome:
        command = Command(
            request.kind, request.tag, request.value, request.reason, request.run_id, request.step
        )
        result = await self.commands.execute(
            session, origin, command, request.signature, request.witness
        )
        return CommandOutcome(
            result.outcome,
            result.tag,
            result.old_value,
            result.new_value,
            result.read_back,
            tuple(s.manifestation() for s in result.signatures),
            result.approval_id,
        )

    def pending_approvals(self, session: Session) -> list[PendingApproval]:
        self.identity.require_session(session)
        return [PendingApproval.of(p) for p in self.approvals.list_pending()]

    async def decide(
        self, session: Session, origin: Origin, decision: Decision
    ) -> CommandOutcome | None:
        """Approve (the command is checked again and written) or reject a pending request."""
        q = self.approvals
        d = decision
        if not d.approve:
            await q.reject(session, origin, d.approval_id, d.user_id, d.password, d.reason)
            return None
        result = await q.approve(session, origin, d.approval_id, d.user_id, d.password, d.reason)
        return CommandOutcome(
            result.outcome,
            result.tag,
            result.old_value,
            result.new_value,
            result.read_back,
            (),
            d.approval_id,
        )

    def what_may_i_do(self, session: Session, run_id: str | None = None) -> list[Choice]:
        """Commands open to this session; within a run, the sequencer's answer."""
        current = self.identity.require_session(session)
        if run_id is not None and self.guide is not None:
            return self.guide.what_now(run_id, current)
        policy = self.identity.policy
        out = []
        for action in (*self._choices, "approve_command"):
            if policy.permitted(current.user.roles, action):
                out.append(Choice(action, None, True))
            else:
                out.append(Choice(action, None, False, "your role does not include it"))
        return out

    # -- session countdown (SUP-10) ---------------------------------------------------

    def session_status(self, session: Session) -> SessionStatus:
        """Seconds until automatic logout and whether to warn, for a countdown on screen.

        The runtime also announces the warning once (``RuntimeEvents.on_session_warning``);
        this lets a screen show the time left. An ended session raises ``SessionEnded``.
        """
        current = self.identity.require_session(session, allow_password_change=True)
        return self.identity.session_status(current)
