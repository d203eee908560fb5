"""ISA-18.2 alarms: the state of every alarm and how process changes move it.

Each analog limit (HH, H, L, LL), each discrete alarm, each device's link and
each system condition is one alarm with its own state. The *condition*
(the process is past the limit, after deadband and delays) is tracked apart
from the *state* the operator sees, because an alarm that is shelved,
suppressed by design or out of service still follows the process: when it
comes back it must show what the process is doing now, not what it did
when it was hidden.

Every state change is an ``AlarmTransition``, handed to the journal: from the
scan path without waiting (the event loop must never block on the disk);
operator actions go through ``hmi.core.alarm_actions``, which commits them
durably before answering.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drivers.base import LinkState
from hmi.core.alarm_config import AlarmConfig, Condition
from hmi.core.alarm_types import (
    ANNUNCIATED,
    COMM_PRIORITY,
    HIDDEN,
    PRIORITY_NAMES,
    SYSTEM,
    Actor,
    AlarmJournal,
    AlarmState,
    AlarmTransition,
    priority_label,
)
from hmi.core.clock import Clock, SystemClock
from hmi.core.errors import HmiError
from hmi.core.scanner import LinkEvent
from hmi.core.tags import Quality, TagChange, TagScalar

__all__ = [
    "ANNUNCIATED",
    "COMM_PRIORITY",
    "HIDDEN",
    "PRIORITY_NAMES",
    "SYSTEM",
    "Actor",
    "Alarm",
    "AlarmEngine",
    "AlarmJournal",
    "AlarmState",
    "AlarmTransition",
    "alarms_from_config",
    "priority_label",
]


@dataclass
class Alarm:
    """One alarm's definition and live state."""

    alarm_id: str
    tag: str
    kind: str
    priority: int
    message: str
    limit_name: str | None = None
    limit: float | None = None
    direction: str = "high"
    """``high``: active at or above the limit; ``low``: at or below; ``equal``: equals ``state``."""
    state_value: bool = True
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    suppress_when: Condition | None = None
    state: AlarmState = AlarmState.NORMAL
    active: bool = False
    suppressed: bool = False
    value: TagScalar | None = None
    activated_at: datetime | None = None
    pending_since: datetime | None = field(default=None, repr=False)
    clearing_since: datetime | None = field(default=None, repr=False)
    shelved_until: datetime | None = None
    hidden_by: Actor | None = None

    @property
    def priority_label(self) -> str:
        return priority_label(self.priority)

    def wants_active(self, value: TagScalar | None) -> bool | None:
        """The condition for ``value`` (with deadband hysteresis); None if it cannot be judged."""
        if value is None:
            return None
        if self.direction == "equal":
            return bool(value) == self.state_value
        if isinstance(value, str) or self.limit is None:
            return None
        v = float(value)
        if self.direction == "high":
            return v >= self.limit if not self.active else v > self.limit - self.deadband
        return v <= self.limit if not self.active else v < self.limit + self.deadband


def alarms_from_config(config: AlarmConfig) -> list[Alarm]:
    """One alarm per configured limit (analog) or one for the state (discrete)."""
    common = {
        "tag": config.tag,
        "deadband": config.deadband,
        "on_delay_s": config.on_delay_s,
        "off_delay_s": config.off_delay_s,
        "suppress_when": config.suppress_when,
    }
    if config.kind == "discrete":
        return [
            Alarm(
                config.tag,
                kind="discrete",
                priority=config.priority,
                message=config.message or f"{config.tag} is {config.state}",
                direction="equal",
                state_value=config.state,
                **common,  # type: ignore[arg-type]
            )
        ]
    out = []
    for name, value, priority in config.limits():
        text = config.message or config.tag
        out.append(
            Alarm(
                f"{config.tag}.{name}",
                kind="analog",
                priority=priority,
                message=f"{text} {name} ({value:g})",
                limit_name=name,
                limit=value,
                direction="high" if name in ("HH", "H") else "low",
                **common,  # type: ignore[arg-type]
            )
        )
    return out


class AlarmEngine:
    """Evaluates tag changes, link events and system conditions into alarm transitions."""

    def __init__(
        self,
        configs: Iterable[AlarmConfig] = (),
        *,
        clock: Clock | None = None,
        journal: AlarmJournal | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.journal = journal
        self.alarms: dict[str, Alarm] = {}
        self._by_tag: dict[str, list[Alarm]] = {}
        self._suppressed_by: dict[str, list[Alarm]] = {}
        self.listeners: list[Callable[[AlarmTransition], None]] = []
        for config in configs:
            for alarm in alarms_from_config(config):
                self._add(alarm)

    def _add(self, alarm: Alarm) -> Alarm:
        if alarm.alarm_id in self.alarms:
            raise ValueError(f"alarm {alarm.alarm_id} is defined twice")
        self.alarms[alarm.alarm_id] = alarm
        self._by_tag.setdefault(alarm.tag, []).append(alarm)
        if alarm.suppress_when is not None:
            self._suppressed_by.setdefault(alarm.suppress_when.tag, []).append(alarm)
        return alarm

    def get(self, alarm_id: str) -> Alarm:
        try:
            return self.alarms[alarm_id]
        except KeyError:
            raise HmiError(f"There is no alarm {alarm_id!r}.", "Unknown alarm") from None

    # -- what the process does ----------------------------------------------------------

    def on_change(self, change: TagChange) -> None:
        """The tag table's subscriber: evaluate every alarm on (or suppressed by) the tag."""
        out: list[AlarmTransition] = []
        now = self.clock.now()
        for alarm in self._suppressed_by.get(change.tag, ()):
            assert alarm.suppress_when is not None
            good = change.quality is not Quality.BAD
            self._set_suppressed(alarm, good and alarm.suppress_when.holds(change.value), now, out)
        actor = Actor(change.actor)
        for alarm in self._by_tag.get(change.tag, ()):
            if change.quality is Quality.BAD:
                continue
            alarm.value = change.value
            self._evaluate(alarm, now, actor, out)
        self._emit(out)

    def on_link(self, event: LinkEvent) -> None:
        """A device's link changed: its communication alarm follows (DOWN is the alarm)."""
        alarm_id = f"COMM.{event.device}"
        alarm = self.alarms.get(alarm_id) or self._add(
            Alarm(
                alarm_id,
                f"device:{event.device}",
                "comm",
                COMM_PRIORITY,
                f"Communication with {event.device} lost",
                direction="equal",
            )
        )
        if event.state is LinkState.CONNECTING:
            return
        alarm.value = event.state.value
        alarm.message = f"Communication with {event.device} lost" + (
            f": {event.reason}" if event.reason else ""
        )
        out: list[AlarmTransition] = []
        self._set_active(alarm, event.state is LinkState.DOWN, event.time, SYSTEM, out)
        self._emit(out)

    def raise_system(self, key: str, message: str, priority: int = 1) -> None:
        """A system condition (integrity check failed, clock drift, disk nearly full, ...)."""
        if priority not in PRIORITY_NAMES:
            raise ValueError(f"priority {priority} is not 1..4")
        alarm_id = f"SYSTEM.{key}"
        alarm = self.alarms.get(alarm_id) or self._add(
            Alarm(alarm_id, f"system:{key}", "system", priority, message, direction="equal")
        )
        alarm.message, alarm.priority = message, priority
        out: list[AlarmTransition] = []
        self._set_active(alarm, True, self.clock.now(), SYSTEM, out)
        self._emit(out)

    def clear_system(self, key: str) -> None:
        alarm = self.alarms.get(f"SYSTEM.{key}")
        if alarm is not None:
            out: list[AlarmTransition] = []
            self._set_active(alarm, False, self.clock.now(), SYSTEM, out)
            self._emit(out)

    def tick(self) -> None:
        """Once a second: on/off delays that have run out, and shelving that has expired."""
        now = self.clock.now()
        out: list[AlarmTransition] = []
        for alarm in self.alarms.values():
            if alarm.pending_since is not None or alarm.clearing_since is not None:
                self._evaluate(alarm, now, SYSTEM, out)
            if (
                alarm.state is AlarmState.SHELVED
                and alarm.shelved_until is not None
                and now >= alarm.shelved_until
            ):
                self.resume(alarm, "shelve_expired", SYSTEM, out)
        self._emit(out)

    def _evaluate(
        self, alarm: Alarm, now: datetime, actor: Actor, out: list[AlarmTransition]
    ) -> None:
        want = alarm.wants_active(alarm.value)
        if want is None or want == alarm.active:
            alarm.pending_since = alarm.clearing_since = None
            return
        if want:
            alarm.clearing_since = None
            alarm.pending_since = alarm.pending_since or now
            if now - alarm.pending_since >= timedelta(seconds=alarm.on_delay_s):
                self._set_active(alarm, True, now, actor, out)
        else:
            alarm.pending_since = None
            alarm.clearing_since = alarm.clearing_since or now
            if now - alarm.clearing_since >= timedelta(seconds=alarm.off_delay_s):
                self._set_active(alarm, False, now, actor, out)

    def _set_active(
        self, alarm: Alarm, active: bool, now: datetime, actor: Actor, out: list[AlarmTransition]
    ) -> None:
        alarm.pending_since = alarm.clearing_since = None
        if alarm.active == active:
            return
        alarm.active = active
        if active:
            alarm.activated_at = now
            if alarm.state in (AlarmState.NORMAL, AlarmState.RTN_UNACK, AlarmState.ACK_ACTIVE):
                out.append(self._move(alarm, AlarmState.UNACK_ACTIVE, "activate", actor, now))
        elif alarm.state is AlarmState.UNACK_ACTIVE:
            out.append(self._move(alarm, AlarmState.RTN_UNACK, "clear", actor, now))
        elif alarm.state is AlarmState.ACK_ACTIVE:
            out.append(self._move(alarm, AlarmState.NORMAL, "clear", actor, now))

    def _set_suppressed(
        self, alarm: Alarm, suppressed: bool, now: datetime, out: list[AlarmTransition]
    ) -> None:
        if alarm.suppressed == suppressed:
            return
        alarm.suppressed = suppressed
        if suppressed and alarm.state not in HIDDEN:
            out.append(self._move(alarm, AlarmState.SUPPRESSED, "suppress", SYSTEM, now))
        elif not suppressed and alarm.state is AlarmState.SUPPRESSED:
            self.resume(alarm, "unsuppress", SYSTEM, out)

    # -- operator actions (checked, signed and committed by AlarmOperations) ------------

    def resume(self, alarm: Alarm, event: str, actor: Actor, out: list[AlarmTransition]) -> None:
        """Leave a hidden state for what the process is doing now."""
        alarm.shelved_until = None
        alarm.hidden_by = None
        if alarm.suppressed and event != "unsuppress":
            to = AlarmState.SUPPRESSED
        else:
            to = AlarmState.UNACK_ACTIVE if alarm.active else AlarmState.NORMAL
        out.append(self._move(alarm, to, event, actor, self.clock.now()))

    def acknowledge(self, alarm: Alarm, actor: Actor) -> AlarmTransition:
        if alarm.state is AlarmState.UNACK_ACTIVE:
            return self._move(alarm, AlarmState.ACK_ACTIVE, "acknowledge", actor, self.clock.now())
        if alarm.state is AlarmState.RTN_UNACK:
            return self._move(alarm, AlarmState.NORMAL, "acknowledge", actor, self.clock.now())
        raise HmiError(f"Alarm {alarm.alarm_id} is not waiting for acknowledgement.")

    def shelve(self, alarm: Alarm, actor: Actor, until: datetime) -> AlarmTransition:
        if alarm.state in (AlarmState.SHELVED, AlarmState.OUT_OF_SERVICE):
            raise HmiError(f"Alarm {alarm.alarm_id} is already {alarm.state.value.lower()}.")
        alarm.shelved_until, alarm.hidden_by = until, actor
        return self._move(alarm, AlarmState.SHELVED, "shelve", actor, self.clock.now())

    def remove_from_service(self, alarm: Alarm, actor: Actor) -> AlarmTransition:
        if alarm.state is AlarmState.OUT_OF_SERVICE:
            raise HmiError(f"Alarm {alarm.alarm_id} is already out of service.")
        alarm.shelved_until, alarm.hidden_by = None, actor
        return self._move(
            alarm, AlarmState.OUT_OF_SERVICE, "out_of_service", actor, self.clock.now()
        )

    def _move(
        self, alarm: Alarm, to: AlarmState, event: str, actor: Actor, now: datetime
    ) -> AlarmTransition:
        before, alarm.state = alarm.state, to
        return AlarmTransition(
            now,
            alarm.alarm_id,
            alarm.tag,
            alarm.kind,
            event,
            before,
            to,
            None if alarm.value is None else str(alarm.value),
            alarm.limit_name,
            None if alarm.limit is None else f"{alarm.limit:g}",
            alarm.priority,
            alarm.message,
            actor,
            alarm.shelved_until,
        )

    def _emit(self, out: list[AlarmTransition]) -> None:
        if not out:
            return
        if self.journal is not None:
            self.journal.record_soon(out)
        for transition in out:
            for listener in self.listeners:
                listener(transition)

    def snapshot(self, alarm: Alarm) -> Alarm:
        """A copy to put back if an operator action cannot be recorded."""
        return copy.copy(alarm)

    def restore(self, snapshot: Alarm) -> None:
        """Put the snapshot back, unless an approved configuration removed the alarm since."""
        alarm = self.alarms.get(snapshot.alarm_id)
        if alarm is not None:
            alarm.__dict__.update(snapshot.__dict__)

    # -- what screens show --------------------------------------------------------------

    def active(self) -> list[Alarm]:
        """Annunciated alarms: most urgent first, then newest first."""
        shown = [a for a in self.alarms.values() if a.state in ANNUNCIATED]
        shown.sort(key=lambda a: -(a.activated_at.timestamp() if a.activated_at else 0))
        shown.sort(key=lambda a: a.priority)
        return shown

    def in_state(self, state: AlarmState) -> list[Alarm]:
        return [a for a in self.alarms.values() if a.state is state]
