"""Who caused a value change: the process, a user's command, or nobody we know of.

SUP-5 records the actor of every logged change, and issue 3 asks that a
change of a *writable* tag that no command of this system explains (someone
at the PLC panel, another SCADA, a device fault) is recorded as unattributed
and raises an event, so QA can see it.

The command service announces each write before sending it
(``expect(tag, value, actor_id, within_s)``). When the device then reports
that value (within a tolerance, before the deadline) the change is the user's;
the expectation is consumed, so one command explains one change. A writable
tag whose value changes with no matching expectation keeps its
``device:<name>`` actor and is flagged unattributed. The first value after
start-up, and the first after BAD quality, is not a change: there is nothing
to compare it with, and a link coming back must not look like tampering.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from hmi.core.clock import Clock
from hmi.core.tags import Quality, TagChange, TagScalar

log = logging.getLogger(__name__)

DEFAULT_REL_TOLERANCE = 1e-6
"""Relative tolerance for numbers: covers a float32 register's rounding of a written value."""


@dataclass(frozen=True, slots=True)
class Expectation:
    tag: str
    value: TagScalar
    actor_id: str
    deadline: float
    """On the clock's monotonic scale."""


_UNKNOWN = object()


class WriteAttribution:
    """Attributes tag changes to the commands that caused them.

    ``writable`` names the tags a command can write (only those can be changed
    behind our back). ``tolerance`` gives a per-tag absolute tolerance, e.g. a
    scaled register's resolution, so a written 37.25 read back as 37.2 still
    matches; numbers also match within ``rel_tolerance``. ``on_unattributed``
    is called with each unattributed change, so the runtime can raise an event
    and an audit record; a failing callback is logged and never loses the change.
    """

    def __init__(
        self,
        writable: Iterable[str],
        *,
        clock: Clock,
        tolerance: Mapping[str, float] | None = None,
        rel_tolerance: float = DEFAULT_REL_TOLERANCE,
        on_unattributed: Callable[[TagChange], None] | None = None,
    ) -> None:
        self._writable = frozenset(writable)
        self._clock = clock
        self._tolerance = dict(tolerance or {})
        self._rel_tolerance = rel_tolerance
        self.on_unattributed = on_unattributed
        self._pending: dict[str, list[Expectation]] = {}
        self._last: dict[str, object] = {}
        self._lock = threading.Lock()

    def set_writable(self, writable: Iterable[str]) -> None:
        """The writable tags of an approved version applied without a restart."""
        self._writable = frozenset(writable)

    def expect(self, tag: str, value: TagScalar, actor_id: str, within_s: float) -> Expectation:
        """Announce that ``actor_id``'s command is about to write ``value`` to ``tag``."""
        if within_s <= 0:
            raise ValueError("within_s must be positive")
        expectation = Expectation(tag, value, actor_id, self._clock.monotonic() + within_s)
        with self._lock:
            self._pending.setdefault(tag, []).append(expectation)
        return expectation

    def pending(self, tag: str) -> list[Expectation]:
        """Expectations for ``tag`` that have neither matched nor expired."""
        with self._lock:
            return list(self._live(tag, self._clock.monotonic()))

    def attribute(self, change: TagChange) -> TagChange:
        """``change`` with its actor decided (see the module docstring)."""
        tag = change.tag
        with self._lock:
            if change.quality is Quality.BAD or change.value is None:
                # No value to compare with: the next value is a first value again.
                self._last.pop(tag, None)
                return change
            matched = self._consume(tag, change.value)
            previous = self._last.get(tag, _UNKNOWN)
            self._last[tag] = change.value
        if matched is not None:
            return replace(change, actor=matched.actor_id, unattributed=False)
        if (
            tag not in self._writable
            or previous is _UNKNOWN
            or self.same(tag, previous, change.value)
        ):
            return change
        flagged = replace(change, unattributed=True)
        if self.on_unattributed is not None:
            try:
                self.on_unattributed(flagged)
            except Exception:
                log.exception("on_unattributed failed for %s; the change is still flagged", tag)
        return flagged

    def same(self, tag: str, a: object, b: object) -> bool:
        """Whether two values of ``tag`` are equal within its tolerance."""
        if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
            return type(a) is type(b) and a == b
        if isinstance(a, int | float) and isinstance(b, int | float):
            if a == b or (math.isnan(a) and math.isnan(b)):
                return True
            absolute = self._tolerance.get(tag, 0.0)
            return math.isclose(a, b, rel_tol=self._rel_tolerance, abs_tol=absolute)
        return a == b

    def forget(self, tag: str | None = None) -> None:
        """Drop the last known value(s), e.g. when a device is reconfigured."""
        with self._lock:
            if tag is None:
                self._last.clear()
            else:
                self._last.pop(tag, None)

    # -- internals (called with the lock held) ------------------------------------

    def _live(self, tag: str, now: float) -> list[Expectation]:
        waiting = self._pending.get(tag)
        if not waiting:
            return []
        live = [e for e in waiting if e.deadline >= now]
        if live:
            self._pending[tag] = live
        else:
            del self._pending[tag]
        return live

    def _consume(self, tag: str, value: TagScalar) -> Expectation | None:
        for expectation in self._live(tag, self._clock.monotonic()):
            if self.same(tag, expectation.value, value):
                self._pending[tag].remove(expectation)
                if not self._pending[tag]:
                    del self._pending[tag]
                return expectation
        return None
