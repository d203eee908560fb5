"""What an operator may do to alarms, and how each action is checked and recorded.

Acknowledging needs a session whose user holds ``acknowledge_alarm``; the
acknowledgement is journaled with that user. Shelving, taking an alarm out
of service and returning it to service hide or restore an alarm a plant
relies on, so each needs a reason and an electronic signature under
``shelve_alarm``; the signature record is committed in the same transaction
as the journal row and the audit row. An action that cannot be recorded is
undone and reported, never left half-done (a regulated action that cannot
be recorded is not performed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from hmi.core.alarms import Actor, Alarm, AlarmEngine, AlarmState, AlarmTransition
from hmi.core.errors import HmiError
from hmi.core.esign import ESignService, SignatureRequest
from hmi.core.identity import IdentityService, Session
from hmi.core.records import AuditEntry, Record

ACK_PERMISSION = "acknowledge_alarm"
SHELVE_PERMISSION = "shelve_alarm"
MAX_SHELVE = timedelta(hours=12)


class AlarmOperations:
    """Acknowledge, shelve, out of service, return to service: the operator's side."""

    def __init__(self, engine: AlarmEngine, identity: IdentityService, esign: ESignService) -> None:
        self.engine = engine
        self.identity = identity
        self.esign = esign

    @staticmethod
    def _actor(session: Session, comment: str | None = None, sigs: tuple[str, ...] = ()) -> Actor:
        return Actor(
            session.user_id,
            session.user.full_name,
            session.origin.terminal_id,
            session.origin.source,
            comment,
            sigs,
        )

    @staticmethod
    def _audit(
        session: Session, transition: AlarmTransition, reason: str | None, sigs: tuple[str, ...]
    ) -> AuditEntry:
        return AuditEntry(
            f"alarm_{transition.event}",
            "done",
            session.user_id,
            session.user.full_name,
            session.origin,
            target=transition.alarm_id,
            old_value=transition.from_state.value,
            new_value=transition.to_state.value,
            reason=reason,
            signature_ids=sigs,
            detail=(
                f"shelved until {transition.shelved_until.isoformat()}"
                if transition.shelved_until
                else None
            ),
        )

    async def _record(
        self,
        snapshots: Sequence[Alarm],
        transitions: Sequence[AlarmTransition],
        records: Sequence[Record],
    ) -> None:
        journal = self.engine.journal
        if journal is not None:
            try:
                await journal.commit(transitions, records)
            except BaseException:
                for snapshot in snapshots:
                    self.engine.restore(snapshot)
                raise
        for transition in transitions:
            for listener in self.engine.listeners:
                listener(transition)

    async def acknowledge(
        self, session: Session, alarm_id: str, comment: str | None = None
    ) -> AlarmTransition:
        current = self.identity.require_permission(session, ACK_PERMISSION)
        alarm = self.engine.get(alarm_id)
        snapshot = self.engine.snapshot(alarm)
        transition = self.engine.acknowledge(alarm, self._actor(current, comment))
        await self._record(
            [snapshot], [transition], [self._audit(current, transition, comment, ())]
        )
        return transition

    async def acknowledge_page(
        self, session: Session, alarm_ids: Sequence[str]
    ) -> list[AlarmTransition]:
        """Acknowledge every alarm on the page that is waiting for it, in one record."""
        current = self.identity.require_permission(session, ACK_PERMISSION)
        waiting = (AlarmState.UNACK_ACTIVE, AlarmState.RTN_UNACK)
        alarms = [self.engine.get(i) for i in alarm_ids]
        alarms = [a for a in alarms if a.state in waiting]
        snapshots = [self.engine.snapshot(a) for a in alarms]
        actor = self._actor(current, "page acknowledge")
        transitions = [self.engine.acknowledge(a, actor) for a in alarms]
        audits = [self._audit(current, t, "page acknowledge", ()) for t in transitions]
        await self._record(snapshots, transitions, audits)
        return transitions

    async def _signed(
        self,
        session: Session,
        alarm: Alarm,
        action: str,
        reason: str,
        password: str,
        user_id: str | None,
        detail: str | None = None,
    ) -> tuple[Session, tuple[str, ...], list[Record]]:
        if not reason.strip():
            raise HmiError(f"Give a reason to {action.replace('_', ' ')} alarm {alarm.alarm_id}.")
        current = self.identity.require_permission(session, SHELVE_PERMISSION)
        request = SignatureRequest(
            action=f"alarm_{action}",
            target=alarm.alarm_id,
            meaning="performed",
            reason=reason,
            old_value=alarm.state.value,
            new_value=detail,
        )
        signature, entry = await self.esign.sign(
            current, request, password, permission=SHELVE_PERMISSION, user_id=user_id
        )
        return current, (signature.signature_id,), [entry]

    async def shelve(
        self,
        session: Session,
        alarm_id: str,
        reason: str,
        duration: timedelta,
        password: str,
        *,
        user_id: str | None = None,
    ) -> AlarmTransition:
        """Hide an alarm for ``duration`` (at most 12 h); it comes back on its own."""
        if not timedelta(0) < duration <= MAX_SHELVE:
            raise HmiError("An alarm can be shelved for up to 12 hours.")
        alarm = self.engine.get(alarm_id)
        if alarm.state in (AlarmState.SHELVED, AlarmState.OUT_OF_SERVICE):
            raise HmiError(f"Alarm {alarm_id} is already {alarm.state.value.lower()}.")
        current, sigs, records = await self._signed(
            session, alarm, "shelve", reason, password, user_id, f"SHELVED for {duration}"
        )
        snapshot = self.engine.snapshot(alarm)
        until = self.engine.clock.now() + duration
        transition = self.engine.shelve(alarm, self._actor(current, reason, sigs), until)
        records.append(self._audit(current, transition, reason, sigs))
        await self._record([snapshot], [transition], records)
        return transition

    async def remove_from_service(
        self,
        session: Session,
        alarm_id: str,
        reason: str,
        password: str,
        *,
        user_id: str | None = None,
    ) -> AlarmTransition:
        alarm = self.engine.get(alarm_id)
        if alarm.state is AlarmState.OUT_OF_SERVICE:
            raise HmiError(f"Alarm {alarm_id} is already out of service.")
        current, sigs, records = await self._signed(
            session, alarm, "out_of_service", reason, password, user_id, "OUT_OF_SERVICE"
        )
        snapshot = self.engine.snapshot(alarm)
        transition = self.engine.remove_from_service(alarm, self._actor(current, reason, sigs))
        records.append(self._audit(current, transition, reason, sigs))
        await self._record([snapshot], [transition], records)
        return transition

    async def return_to_service(
        self,
        session: Session,
        alarm_id: str,
        reason: str,
        password: str,
        *,
        user_id: str | None = None,
    ) -> AlarmTransition:
        """Bring a shelved or out-of-service alarm back before its time."""
        alarm = self.engine.get(alarm_id)
        if alarm.state not in (AlarmState.OUT_OF_SERVICE, AlarmState.SHELVED):
            raise HmiError(f"Alarm {alarm_id} is in service.")
        event = "return_to_service" if alarm.state is AlarmState.OUT_OF_SERVICE else "unshelve"
        current, sigs, records = await self._signed(
            session, alarm, event, reason, password, user_id, "IN_SERVICE"
        )
        snapshot = self.engine.snapshot(alarm)
        out: list[AlarmTransition] = []
        self.engine.resume(alarm, event, self._actor(current, reason, sigs), out)
        records.append(self._audit(current, out[0], reason, sigs))
        await self._record([snapshot], out, records)
        return out[0]
