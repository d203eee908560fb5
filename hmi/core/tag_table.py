"""The tag table: the newest value of every tag, and which new values are *logged changes*.

Drivers report samples far more often than anything changes, and history,
alarms and screens care about changes. A numeric value is a logged change
when it differs from the last *logged* value by more than the tag's deadband
(comparing with the last logged value, not the last sample, so a slow drift
is still recorded once it adds up). A change of quality, and any change of a
bool or string, is always logged.

Every logged change goes to the subscribers as a ``TagChange`` whose actor is
``device:<device name>``. A hook (``attribute``) may rewrite the change
first: ``hmi.core.attribution.WriteAttribution.attribute`` turns the actor
into the user whose command explains the change, or flags a change nobody
explains. Samples for one device are applied in one call, so a whole scan is
one pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from drivers.base import Quality as DriverQuality
from drivers.base import Sample
from drivers.codec import DType
from hmi.core.clock import Clock, SystemClock
from hmi.core.plant_config import DEFAULT_SCAN_CLASS, TagConfig
from hmi.core.tags import Quality, TagChange, TagScalar, TagValue

log = logging.getLogger(__name__)

WAITING = "waiting for initial data"
_QUALITY = {DriverQuality.GOOD: Quality.GOOD, DriverQuality.UNCERTAIN: Quality.UNCERTAIN,
            DriverQuality.BAD: Quality.BAD}  # fmt: skip

ChangeCallback = Callable[[TagChange], object]
Attribute = Callable[[TagChange], TagChange]
"""Rewrites a logged change's actor (see ``WriteAttribution.attribute``)."""


@dataclass(frozen=True, slots=True)
class TagDef:
    """What the core knows about a tag from configuration (SUP-4)."""

    name: str
    device: str
    address: str
    dtype: DType
    units: str = ""
    writable: bool = False
    low: float | None = None
    high: float | None = None
    rate_of_change: float | None = None
    area: str = ""
    equipment: str = ""
    description: str = ""
    deadband: float = 0.0
    """Absolute logging deadband in engineering units (0: every change is logged)."""
    scan_class: str = DEFAULT_SCAN_CLASS

    @property
    def numeric(self) -> bool:
        return self.dtype not in ("bool", "string")

    @classmethod
    def from_config(cls, tag: TagConfig) -> TagDef:
        return cls(
            tag.name, tag.device, tag.address, tag.type, tag.units, tag.writable, tag.low,
            tag.high, tag.rate_of_change, tag.area, tag.equipment, tag.description,
            tag.absolute_deadband, tag.scan_class or DEFAULT_SCAN_CLASS,
        )  # fmt: skip


def _scalar(value: object) -> TagScalar | None:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class TagTable:
    """Current values of all tags, fed by the scanner, read by screens, history and alarms."""

    def __init__(self, defs: Iterable[TagDef], *, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._defs: dict[str, TagDef] = {}
        devices: dict[str, list[str]] = {}
        for d in defs:
            if d.name in self._defs:
                raise ValueError(f"tag {d.name!r} is defined twice")
            self._defs[d.name] = d
            devices.setdefault(d.device, []).append(d.name)
        self._by_device = {dev: tuple(names) for dev, names in devices.items()}
        now = self._clock.now()
        self._values = {n: TagValue(n, None, Quality.BAD, None, now, WAITING) for n in self._defs}
        self._logged: dict[str, tuple[TagScalar | None, Quality]] = {}
        self._subscribers: list[ChangeCallback] = []
        self.attribute: Attribute | None = None
        self.samples_applied = 0
        self.changes_logged = 0
        self.version = 0
        """Goes up whenever any value is replaced: a reader that saw this version has seen
        every current value (remote terminals share one read of the table per version)."""

    # -- reading ------------------------------------------------------------------------

    @property
    def definitions(self) -> dict[str, TagDef]:
        return dict(self._defs)

    def definition(self, name: str) -> TagDef:
        return self._defs[name]

    def get(self, name: str) -> TagValue:
        """The newest value of ``name`` (KeyError for an unknown tag)."""
        return self._values[name]

    def snapshot(self) -> dict[str, TagValue]:
        """Every tag's newest value; the values are replaced, never changed, so this is stable."""
        return dict(self._values)

    def devices(self) -> dict[str, tuple[str, ...]]:
        """Tag names per device."""
        return dict(self._by_device)

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` with every logged change; returns the function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def redefine(self, defs: Iterable[TagDef]) -> list[str]:
        """Replace the definitions of existing tags whose scan-side fields (device, address,
        type, scan class) are unchanged: an approved version changing only what no driver
        uses takes effect without a restart. Returns the tags whose definition changed;
        ValueError (and nothing changed) if any definition is not such a replacement."""
        new = {d.name: d for d in defs}
        if set(new) != set(self._defs):
            raise ValueError("the set of tags differs; that takes a restart")
        for name, d in new.items():
            old = self._defs[name]
            if (d.device, d.address, d.dtype, d.scan_class) != (
                old.device, old.address, old.dtype, old.scan_class
            ):  # fmt: skip
                raise ValueError(f"tag {name!r} changes how it is scanned; that takes a restart")
        changed = [name for name, d in new.items() if d != self._defs[name]]
        self._defs.update(new)
        if changed:
            self.version += 1  # a reading carries its units: readers must look again
        return changed

    def reconfigure(self, defs: Iterable[TagDef]) -> tuple[list[str], list[str], list[str]]:
        """Take a new tag set while the drivers are stopped (an approved version rebuilds
        them): tags whose scan-side fields are unchanged keep their newest value; new and
        re-addressed ones wait for initial data. Returns (added, removed, rescanned)."""
        new = {}
        for d in defs:
            if d.name in new:
                raise ValueError(f"tag {d.name!r} is defined twice")
            new[d.name] = d
        now = self._clock.now()
        added = [n for n in new if n not in self._defs]
        removed = [n for n in self._defs if n not in new]
        rescanned = [
            n
            for n, d in new.items()
            if n in self._defs
            and (d.device, d.address, d.dtype) != (
                self._defs[n].device, self._defs[n].address, self._defs[n].dtype
            )
        ]  # fmt: skip
        for name in (*removed, *rescanned):
            self._values.pop(name, None)
            self._logged.pop(name, None)
        for name in (*added, *rescanned):
            self._values[name] = TagValue(name, None, Quality.BAD, None, now, WAITING)
        devices: dict[str, list[str]] = {}
        for d in new.values():
            devices.setdefault(d.device, []).append(d.name)
        self._defs = new
        self._by_device = {dev: tuple(names) for dev, names in devices.items()}
        self.version += 1
        return added, removed, rescanned

    # -- updating -----------------------------------------------------------------------

    def apply(self, device: str, samples: Sequence[Sample]) -> int:
        """Apply a driver's samples for ``device``; returns how many were logged changes."""
        logged = 0
        actor = f"device:{device}"
        values, defs = self._values, self._defs
        for s in samples:
            d = defs.get(s.point)
            if d is None or d.device != device:
                log.debug("device %s reported %r, which is none of its tags", device, s.point)
                continue
            value = _scalar(s.value)
            quality = _QUALITY[s.quality]
            values[s.point] = TagValue(
                s.point, value, quality, s.source_time, s.server_time, s.reason
            )
            if self._is_change(d, value, quality):
                logged += 1
                self._log(TagChange(s.point, value, quality, s.source_time, s.server_time,
                                    actor, s.reason))  # fmt: skip
        self.samples_applied += len(samples)
        self.version += 1
        return logged

    def set_device_quality(self, device: str, quality: Quality, reason: str) -> int:
        """Give every tag of ``device`` ``quality`` (a dead link: BAD) with no value."""
        now = self._clock.now()
        logged = 0
        self.version += 1
        for name in self._by_device.get(device, ()):
            self._values[name] = TagValue(name, None, quality, None, now, reason)
            if self._is_change(self._defs[name], None, quality):
                logged += 1
                self._log(TagChange(name, None, quality, None, now, f"device:{device}", reason))
        return logged

    def _is_change(self, d: TagDef, value: TagScalar | None, quality: Quality) -> bool:
        last = self._logged.get(d.name)
        if last is not None:
            last_value, last_quality = last
            if quality is last_quality and not self._differs(d, last_value, value):
                return False
        self._logged[d.name] = (value, quality)
        return True

    @staticmethod
    def _differs(d: TagDef, old: TagScalar | None, new: TagScalar | None) -> bool:
        a, b = _number(old), _number(new)
        if a is None or b is None:
            return type(old) is not type(new) or old != new
        if math.isnan(a) or math.isnan(b):
            return not (math.isnan(a) and math.isnan(b))
        return abs(b - a) > d.deadband if d.deadband > 0 else a != b

    def _log(self, change: TagChange) -> None:
        self.changes_logged += 1
        if self.attribute is not None:
            try:
                change = self.attribute(change)
            except Exception:
                log.exception(
                    "attribution of %s failed; recorded with the device actor", change.tag
                )
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:
                log.exception("tag change subscriber failed for %s", change.tag)
