"""The alarm side of the Terminal API: what a terminal sees of alarms and may do to them.

Operator actions on alarms are commands like any other: the session's
permission (checked by ``AlarmOperations``), the terminal (the action must
be allowed there, and the alarm's area, taken from its tag), a reason and a
signature where the action hides an alarm. Every refusal is recorded in the
audit trail before the person sees it, as for setpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from hmi.core.alarm_actions import ACK_PERMISSION, SHELVE_PERMISSION, AlarmOperations
from hmi.core.alarms import Alarm, AlarmState, AlarmTransition
from hmi.core.api_refusals import record_refusal
from hmi.core.api_types import AlarmBanner, AlarmView
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.core.identity import IdentityService, Session
from hmi.core.ports import Recorder
from hmi.core.records import Origin
from hmi.core.tag_table import TagTable
from hmi.core.terminals import TerminalConfig, check_terminal

WAITING = (AlarmState.UNACK_ACTIVE, AlarmState.RTN_UNACK)


def alarm_view(alarm: Alarm) -> AlarmView:
    hidden = None
    if alarm.hidden_by is not None:
        who = alarm.hidden_by
        hidden = f"{who.actor_name or who.actor_id}: {who.comment or ''}".rstrip(": ")
    return AlarmView(
        alarm.alarm_id,
        alarm.tag,
        alarm.kind,
        alarm.priority,
        alarm.priority_label,
        alarm.message,
        alarm.state.value,
        alarm.active,
        None if alarm.value is None else str(alarm.value),
        alarm.limit,
        alarm.activated_at,
        alarm.shelved_until,
        hidden,
    )


class AlarmDesk:
    def __init__(
        self,
        identity: IdentityService,
        operations: AlarmOperations,
        table: TagTable,
        terminals: list[TerminalConfig],
        recorder: Recorder,
    ) -> None:
        self.identity = identity
        self.ops = operations
        self.engine = operations.engine
        self.table = table
        self.terminals = terminals
        self.recorder = recorder

    # -- what a terminal shows ------------------------------------------------------------

    def active(self, session: Session) -> list[AlarmView]:
        """Annunciated alarms, most urgent first, then newest first."""
        self.identity.require_session(session)
        return [alarm_view(a) for a in self.engine.active()]

    def hidden(self, session: Session) -> list[AlarmView]:
        """Shelved, suppressed by design and out of service: what the plant is not told."""
        self.identity.require_session(session)
        states = (AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE)
        return [alarm_view(a) for s in states for a in self.engine.in_state(s)]

    def banner(self, session: Session) -> AlarmBanner:
        self.identity.require_session(session)
        waiting = [a for a in self.engine.active() if a.state in WAITING]
        return AlarmBanner(len(waiting), alarm_view(waiting[0]) if waiting else None)

    # -- what a terminal may do -------------------------------------------------------------

    def _area(self, alarm_id: str) -> str | None:
        """The area of the alarm's tag; system and device alarms have none (any terminal)."""
        alarm = self.engine.alarms.get(alarm_id)
        if alarm is None:
            raise HmiError(f"There is no alarm {alarm_id}.")
        try:
            return self.table.definition(alarm.tag).area
        except KeyError:
            return None

    async def _refused(
        self,
        session: Session,
        origin: Origin,
        action: str,
        target: str,
        error: HmiError,
        reason: str | None = None,
    ) -> HmiError:
        return await record_refusal(self.recorder, session, origin, action, target, error, reason)

    def _check(self, session: Session, origin: Origin, permission: str, alarm_id: str) -> None:
        current = self.identity.require_permission(session, permission)
        check_terminal(self.terminals, current.origin, origin, permission, self._area(alarm_id))

    async def acknowledge(
        self, session: Session, origin: Origin, alarm_id: str, comment: str | None = None
    ) -> AlarmView:
        try:
            self._check(session, origin, ACK_PERMISSION, alarm_id)
            await self.ops.acknowledge(session, alarm_id, comment)
        except HmiError as exc:
            raise await self._refused(
                session, origin, "alarm_acknowledge", alarm_id, exc, comment
            ) from None
        return alarm_view(self.engine.get(alarm_id))

    async def acknowledge_page(
        self, session: Session, origin: Origin, alarm_ids: Sequence[str]
    ) -> int:
        """Acknowledge the alarms shown on a page that wait for it; returns how many."""
        try:
            for alarm_id in alarm_ids:
                self._check(session, origin, ACK_PERMISSION, alarm_id)
            done = await self.ops.acknowledge_page(session, alarm_ids)
        except HmiError as exc:
            raise await self._refused(
                session, origin, "alarm_acknowledge", ",".join(alarm_ids)[:500], exc
            ) from None
        return len(done)

    async def _hide(
        self,
        session: Session,
        origin: Origin,
        action: str,
        alarm_id: str,
        reason: str,
        signature: Credentials,
        duration: timedelta | None = None,
    ) -> AlarmTransition:
        try:
            self._check(session, origin, SHELVE_PERMISSION, alarm_id)
            sig = {"user_id": signature.user_id}
            if action == "shelve":
                assert duration is not None
                return await self.ops.shelve(
                    session, alarm_id, reason, duration, signature.password, **sig
                )
            if action == "out_of_service":
                return await self.ops.remove_from_service(
                    session, alarm_id, reason, signature.password, **sig
                )
            return await self.ops.return_to_service(
                session, alarm_id, reason, signature.password, **sig
            )
        except HmiError as exc:
            raise await self._refused(
                session, origin, f"alarm_{action}", alarm_id, exc, reason
            ) from None

    async def shelve(
        self,
        session: Session,
        origin: Origin,
        alarm_id: str,
        reason: str,
        minutes: float,
        signature: Credentials,
    ) -> AlarmView:
        """Hide the alarm for ``minutes`` (signed); it returns on its own when they run out."""
        duration = timedelta(minutes=minutes)
        await self._hide(session, origin, "shelve", alarm_id, reason, signature, duration)
        return alarm_view(self.engine.get(alarm_id))

    async def remove_from_service(
        self, session: Session, origin: Origin, alarm_id: str, reason: str, signature: Credentials
    ) -> AlarmView:
        await self._hide(session, origin, "out_of_service", alarm_id, reason, signature)
        return alarm_view(self.engine.get(alarm_id))

    async def return_to_service(
        self, session: Session, origin: Origin, alarm_id: str, reason: str, signature: Credentials
    ) -> AlarmView:
        await self._hide(session, origin, "return_to_service", alarm_id, reason, signature)
        return alarm_view(self.engine.get(alarm_id))
