"""Approved alarm definitions applied to a running alarm engine (SUP-12, ISA-18.2).

An approved ``alarms.toml`` does not wait for a restart: a restart would lose
every acknowledgement and shelving the operators made. So the new definitions
are merged into the live engine:

* an alarm whose ID and definition are unchanged is not touched at all;
* a changed one takes the new definition and is evaluated against the tag's
  current value at once, through the ordinary state machine, so a limit that
  is already exceeded activates and one that no longer is clears (journaled);
* a removed one that is active, unacknowledged or hidden by an operator is
  journaled as removed by the configuration version before it goes, so no
  alarm an operator could be relying on vanishes without a record;
* a new one starts NORMAL and is evaluated at once.

Communication and system alarms are not configuration and are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from hmi.core.alarm_config import AlarmConfig
from hmi.core.alarm_types import Actor, AlarmState, AlarmTransition
from hmi.core.alarms import Alarm, AlarmEngine, alarms_from_config
from hmi.core.tags import Quality, TagScalar

CONFIGURED = ("analog", "discrete")
"""Kinds of alarm that come from ``alarms.toml``."""

DEFINITION = (
    "tag", "kind", "priority", "message", "limit_name", "limit", "direction", "state_value",
    "deadband", "on_delay_s", "off_delay_s", "suppress_when",
)  # fmt: skip
"""The fields of ``Alarm`` that come from configuration; the rest is live state."""

CurrentValue = Callable[[str], tuple[TagScalar | None, Quality] | None]
"""A tag's current value and quality, or None for a tag the plant does not have."""


@dataclass(frozen=True, slots=True)
class AlarmReload:
    """What an applied version did to the alarm definitions."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        parts = [
            f"{label} {', '.join(ids)}"
            for label, ids in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if ids
        ]
        kept = f"{self.unchanged} unchanged kept their state"
        return "alarms " + ("; ".join(parts) + f"; {kept}" if parts else f"unchanged ({kept})")


def _definition(alarm: Alarm) -> tuple[object, ...]:
    return tuple(getattr(alarm, name) for name in DEFINITION)


def reload_alarms(
    engine: AlarmEngine,
    configs: Iterable[AlarmConfig],
    version: int,
    current: CurrentValue,
) -> AlarmReload:
    """Merge ``configs`` into ``engine`` as described above; every state change it causes
    goes to the engine's journal and listeners like any other."""
    wanted = {a.alarm_id: a for c in configs for a in alarms_from_config(c)}
    now = engine.clock.now()
    actor = Actor(
        "system",
        "Custos runtime",
        source=f"config:version {version}",
        comment=f"configuration version {version} applied",
    )
    out: list[AlarmTransition] = []
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    unchanged = 0
    for alarm_id, alarm in list(engine.alarms.items()):
        if alarm.kind in CONFIGURED and alarm_id not in wanted:
            _remove(engine, alarm, version, now, actor, out)
            removed.append(alarm_id)
    for alarm_id, new in wanted.items():
        old = engine.alarms.get(alarm_id)
        if old is not None and _definition(old) == _definition(new):
            unchanged += 1
            continue
        if old is None:
            engine.alarms[alarm_id] = alarm = new
            added.append(alarm_id)
        else:
            alarm = old
            for name in DEFINITION:
                setattr(alarm, name, getattr(new, name))
            alarm.pending_since = alarm.clearing_since = None
            changed.append(alarm_id)
    _reindex(engine)
    for alarm_id in (*added, *changed):
        _evaluate_now(engine, engine.alarms[alarm_id], current, now, actor, out)
    engine._emit(out)
    return AlarmReload(tuple(added), tuple(changed), tuple(removed), unchanged)


def _remove(
    engine: AlarmEngine,
    alarm: Alarm,
    version: int,
    now: datetime,
    actor: Actor,
    out: list[AlarmTransition],
) -> None:
    """Drop ``alarm``; one an operator could be relying on is journaled as removed first."""
    if alarm.active or alarm.state is not AlarmState.NORMAL:
        alarm.message = f"{alarm.message} (removed by configuration version {version})"
        alarm.shelved_until = None
        out.append(engine._move(alarm, AlarmState.NORMAL, "removed_by_config", actor, now))
    del engine.alarms[alarm.alarm_id]


def _reindex(engine: AlarmEngine) -> None:
    """The engine's lookups by tag and by suppressing tag, rebuilt from its alarms."""
    engine._by_tag.clear()
    engine._suppressed_by.clear()
    for alarm in engine.alarms.values():
        engine._by_tag.setdefault(alarm.tag, []).append(alarm)
        if alarm.suppress_when is not None:
            engine._suppressed_by.setdefault(alarm.suppress_when.tag, []).append(alarm)


def _evaluate_now(
    engine: AlarmEngine,
    alarm: Alarm,
    current: CurrentValue,
    now: datetime,
    actor: Actor,
    out: list[AlarmTransition],
) -> None:
    """The alarm against what the process is doing now (suppression first, as on a change)."""
    if alarm.suppress_when is not None:
        found = current(alarm.suppress_when.tag)
        holds = (
            found is not None
            and found[1] is not Quality.BAD
            and alarm.suppress_when.holds(found[0])
        )
        engine._set_suppressed(alarm, holds, now, out)
    elif alarm.suppressed:
        engine._set_suppressed(alarm, False, now, out)
    found = current(alarm.tag)
    if found is not None and found[1] is not Quality.BAD:
        alarm.value = found[0]
    engine._evaluate(alarm, now, actor, out)


def drop_device_alarms(engine: AlarmEngine, devices: Iterable[str], version: int) -> list[str]:
    """The communication alarms of devices an applied version no longer has: journaled as
    removed when they are not NORMAL, like a removed configured alarm."""
    actor = Actor("system", "Custos runtime", source=f"config:version {version}")
    out: list[AlarmTransition] = []
    dropped = [f"COMM.{d}" for d in devices if f"COMM.{d}" in engine.alarms]
    for alarm_id in dropped:
        _remove(engine, engine.alarms[alarm_id], version, engine.clock.now(), actor, out)
    _reindex(engine)
    engine._emit(out)
    return dropped
