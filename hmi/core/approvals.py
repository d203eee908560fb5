"""The approval queue: critical commands waiting for a supervisor's signature (SUP-8).

A command whose policy is ``double`` and that had no witness at the
terminal waits here, signed by the person who asked. A supervisor (never the
requester) sees who asked, exactly what (old → new, units), why and when it
expires, and approves or rejects with a full signature (user ID and
password; meaning "approved", or "reviewed" for a rejection, and the
signed action says which). Approval does not trust the past: the command
is checked again at that moment (the value may have changed, the limits or
the gate may now refuse it, the approver's terminal must allow it) and only
then written. A request nobody decides in time
expires; that is recorded and supervisors are notified.

Every request, decision and expiry is an audit row (``approval_requested``,
``approval_approved``, ``approval_rejected``, ``approval_expired``,
``approval_refused``, ``approval_withdrawn`` when the runtime stops with requests
undecided) carrying the approval ID, and the QA view ``approvals``
shows them (migration 0006).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hmi.core.clock import Clock
from hmi.core.commands import (
    SUPERVISOR_PERMISSION,
    Actor,
    CommandResult,
    CommandService,
    Prepared,
)
from hmi.core.errors import HmiError
from hmi.core.esign import Signature, SignatureRequest
from hmi.core.identity import Session
from hmi.core.records import AuditEntry, NotificationEntry, Origin, SignatureEntry
from hmi.core.tags import TagScalar


class ApprovalRefused(HmiError):
    title = "Approval not possible"


@dataclass(frozen=True)
class PendingCommand:
    """One request as a supervisor sees it."""

    approval_id: str
    prepared: Prepared
    requester_id: str
    requester_name: str
    origin: Origin
    requested_at: datetime
    expires_at: datetime
    signature_ids: tuple[str, ...]

    @property
    def tag(self) -> str:
        return self.prepared.command.tag

    @property
    def old_value(self) -> TagScalar | None:
        return self.prepared.old_value

    @property
    def new_value(self) -> TagScalar:
        return self.prepared.value

    @property
    def units(self) -> str:
        return self.prepared.definition.units

    @property
    def reason(self) -> str:
        return self.prepared.command.reason

    def change(self) -> str:
        units = f" {self.units}" if self.units else ""
        return f"{self.tag}: {self.old_value}{units} → {self.new_value}{units}"

    def to_requester(self, kind: str, text: str) -> NotificationEntry:
        """What the requester's terminal pops up when the request is decided or ends."""
        return NotificationEntry(f"user:{self.requester_id}", kind, text, self.approval_id)

    def describe(self) -> str:
        units = f" {self.units}" if self.units else ""
        return (
            f"{self.requester_name} ({self.requester_id}) asks to {self.prepared.command.kind} "
            f"{self.tag}: {self.old_value}{units} → {self.new_value}{units}, because "
            f"{self.reason!r}; expires {self.expires_at.isoformat(timespec='seconds')}"
        )


class ApprovalQueue:
    """Implements ``commands.ApprovalSink``; the runtime ticks ``expire`` periodically."""

    def __init__(self, commands: CommandService, clock: Clock, expiry_s: int) -> None:
        self.commands = commands
        self.clock = clock
        self.expiry = timedelta(seconds=expiry_s)
        self.pending: dict[str, PendingCommand] = {}
        commands.approvals = self

    def _row(
        self,
        action: str,
        outcome: str,
        actor: Actor,
        item: PendingCommand,
        *,
        detail: str | None = None,
        reason: str | None = None,
        signature_ids: tuple[str, ...] | None = None,
    ) -> AuditEntry:
        entry = self.commands._entry(actor, item.prepared, outcome)
        text = f"approval {item.approval_id}" + (f": {detail}" if detail else "")
        return AuditEntry(
            action,
            outcome,
            actor.user_id,
            actor.name,
            actor.origin,
            target=entry.target,
            old_value=entry.old_value,
            new_value=entry.new_value,
            units=entry.units,
            reason=reason or entry.reason,
            signature_ids=item.signature_ids if signature_ids is None else signature_ids,
            run_id=entry.run_id,
            step=entry.step,
            detail=text[:2000],
        )

    async def submit(
        self,
        session: Session,
        origin: Origin,
        prepared: Prepared,
        signed: Sequence[tuple[Signature, SignatureEntry]],
    ) -> CommandResult:
        now = self.clock.now()
        item = PendingCommand(
            uuid.uuid4().hex,
            prepared,
            session.user_id,
            session.user.full_name,
            origin,
            now,
            now + self.expiry,
            tuple(s.signature_id for s, _ in signed),
        )
        actor = Actor(session.user_id, session.user.full_name, origin)
        row = self._row(
            "approval_requested",
            "pending",
            actor,
            item,
            detail=f"waits for a supervisor until {item.expires_at.isoformat()}",
        )
        await self.commands.recorder.commit([*(e for _, e in signed), row])
        self.pending[item.approval_id] = item
        return CommandResult(
            "pending",
            prepared.command.tag,
            prepared.old_value,
            prepared.value,
            signatures=tuple(s for s, _ in signed),
            approval_id=item.approval_id,
        )

    def list_pending(self) -> list[PendingCommand]:
        return sorted(self.pending.values(), key=lambda p: p.requested_at)

    def _request(
        self, item: PendingCommand, decision: str, meaning: str, reason: str
    ) -> SignatureRequest:
        """What the supervisor signs: the decision on exactly this request."""
        c = item.prepared.command
        request = item.prepared.request(meaning)
        return SignatureRequest(
            action=f"{decision} {c.kind} (approval {item.approval_id})",
            target=request.target,
            meaning=meaning,
            reason=reason,
            old_value=request.old_value,
            new_value=request.new_value,
            units=request.units,
            run_id=request.run_id,
            step=request.step,
        )

    async def _decide_checks(
        self, session: Session, origin: Origin, approval_id: str, user_id: str
    ) -> tuple[PendingCommand, Actor]:
        actor = Actor(session.user_id, session.user.full_name, origin)
        item = self.pending.get(approval_id)
        if item is None:
            raise ApprovalRefused(f"There is no pending request {approval_id}.")
        try:
            self.commands.identity.require_permission(session, SUPERVISOR_PERMISSION)
            if user_id != session.user_id:
                raise ApprovalRefused("Sign with your own user ID: you are the one logged in.")
            if session.user_id == item.requester_id:
                raise ApprovalRefused(
                    "You asked for this command; another supervisor must approve or reject it."
                )
            if self.clock.now() >= item.expires_at:
                await self.expire()
                raise ApprovalRefused("This request has expired; ask for it again if needed.")
        except HmiError as exc:
            await self._record_refusal(actor, item, exc)
            raise
        return item, actor

    async def _sign_decision(
        self,
        item: PendingCommand,
        actor: Actor,
        decision: str,
        meaning: str,
        reason: str,
        user_id: str,
        password: str,
        origin: Origin,
    ) -> tuple[Signature, SignatureEntry]:
        """The supervisor's full signature on the decision; a refused one is recorded first."""
        try:
            return await self.commands.esign.witness(
                self._request(item, decision, meaning, reason),
                user_id,
                password,
                origin,
                permission=SUPERVISOR_PERMISSION,
                not_user=item.requester_id,
            )
        except HmiError as exc:
            await self._record_refusal(actor, item, exc)
            raise

    async def _record_refusal(self, actor: Actor, item: PendingCommand, exc: HmiError) -> None:
        await self.commands.recorder.commit(
            [self._row("approval_refused", "refused", actor, item, detail=exc.message)]
        )

    async def approve(
        self,
        session: Session,
        origin: Origin,
        approval_id: str,
        user_id: str,
        password: str,
        reason: str,
    ) -> CommandResult:
        """A supervisor approves: sign, check everything again, then write."""
        item, actor = await self._decide_checks(session, origin, approval_id, user_id)
        commands = self.commands
        signature, entry = await self._sign_decision(
            item, actor, "approve", "approved", reason, user_id, password, origin
        )
        try:
            again = await commands.check(session, origin, item.prepared.command)
            if not commands.attribution.same(item.tag, again.old_value, item.old_value):
                raise ApprovalRefused(
                    f"{item.tag} is now {again.old_value}, not {item.old_value} as when the "
                    "request was made, so the request is withdrawn: nobody may approve a change "
                    "from a value they were not shown. Ask for it again."
                )
        except HmiError as exc:
            self.pending.pop(approval_id, None)
            ids = (*item.signature_ids, signature.signature_id)
            await commands.recorder.commit(
                [
                    entry,
                    self._row(
                        "approval_refused",
                        "refused",
                        actor,
                        item,
                        detail=exc.message,
                        signature_ids=ids,
                    ),
                    item.to_requester(
                        "approval_refused", f"Not written: {item.change()}: {exc.message}"
                    ),
                ]
            )
            raise
        self.pending.pop(approval_id, None)
        decided = self._row(
            "approval_approved",
            "done",
            actor,
            item,
            reason=reason,
            signature_ids=(*item.signature_ids, signature.signature_id),
        )
        # The write stays the requester's command; the approver's signature is on it too.
        requester = Actor(item.requester_id, item.requester_name, item.origin)
        requester.extra_signatures.extend((*item.signature_ids, signature.signature_id))
        prepared = replace(again, esign=item.prepared.esign)
        by = f"Approved by {actor.name} ({actor.user_id}): {item.change()}"
        try:
            result = await commands.perform(requester, prepared, [], [entry, decided])
        except HmiError as exc:
            told = item.to_requester("approval_approved", f"{by}; the write failed: {exc.message}")
            await commands.recorder.commit([told])
            raise
        await commands.recorder.commit([item.to_requester("approval_approved", f"{by}; written.")])
        return result

    async def reject(
        self,
        session: Session,
        origin: Origin,
        approval_id: str,
        user_id: str,
        password: str,
        reason: str,
    ) -> None:
        item, actor = await self._decide_checks(session, origin, approval_id, user_id)
        signature, entry = await self._sign_decision(
            item, actor, "reject", "reviewed", reason, user_id, password, origin
        )
        self.pending.pop(approval_id, None)
        row = self._row(
            "approval_rejected",
            "done",
            actor,
            item,
            reason=reason,
            signature_ids=(*item.signature_ids, signature.signature_id),
        )
        told = item.to_requester(
            "approval_rejected",
            f"Rejected by {actor.name} ({actor.user_id}): {item.change()}; because {reason!r}.",
        )
        await self.commands.recorder.commit([entry, row, told])

    async def withdraw_all(self, why: str) -> list[PendingCommand]:
        """Requests that can no longer be decided (the queue lives in memory): recorded."""
        gone = list(self.pending.values())
        self.pending.clear()
        for item in gone:
            system = Actor("system", "Custos runtime", item.origin)
            text = f"Approval request withdrawn ({why}): {item.describe()}."
            notice = NotificationEntry("supervisor", "approval_withdrawn", text, item.approval_id)
            row = self._row("approval_withdrawn", "withdrawn", system, item, detail=why)
            told = item.to_requester("approval_withdrawn", f"Withdrawn ({why}): {item.change()}.")
            await self.commands.recorder.commit([row, notice, told])
        return gone

    async def expire(self) -> list[PendingCommand]:
        """Requests past their expiry: recorded, removed, and supervisors notified."""
        now = self.clock.now()
        gone = [p for p in self.pending.values() if now >= p.expires_at]
        for item in gone:
            self.pending.pop(item.approval_id, None)
            system = Actor("system", "Custos runtime", item.origin)
            text = f"Approval request expired unanswered: {item.describe()}."
            notice = NotificationEntry("supervisor", "approval_expired", text, item.approval_id)
            told = item.to_requester("approval_expired", f"Expired unanswered: {item.change()}.")
            await self.commands.recorder.commit(
                [
                    self._row("approval_expired", "expired", system, item, detail="expired"),
                    notice,
                    told,
                ]
            )
            notifier = self.commands.identity.notifier
            if notifier is not None:
                await notifier.notify(notice)
        return gone
