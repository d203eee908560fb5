"""The scanner: drivers → tag table, by polling or by subscription.

Polled devices (Modbus) are read in *poll groups*, one per device and scan
class, each on an absolute schedule: cycle n is due at start + n × period,
so the period does not drift by the time each read takes. A read slower than
the period does not queue reads behind it; the missed cycles are skipped and
counted as overruns, because reads piling up against a slow device only make
it slower and the values older. Devices that push changes (OPC UA,
``Subscribing``) get one subscription for all their tags.

A link going down turns every tag of the device BAD with the driver's reason
at once (not only the tags of the group that noticed), and is reported as a
``LinkEvent``, which the runtime turns into a communication alarm. When the
link returns, the next poll or the re-created subscription brings GOOD values.

The scanner knows drivers only through ``drivers.base`` (stdlib only), so
the core stays free of protocol libraries; the clock and the sleep are
injected so schedules can be tested without waiting for wall time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from drivers.base import Driver, DriverError, LinkState, Sample, Subscribing, cancel_and_wait
from drivers.base import Quality as DriverQuality
from hmi.core.clock import Clock, SystemClock
from hmi.core.tag_table import TagTable
from hmi.core.tags import Quality

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A device's link changed state; ``tags`` are the device's tags (all BAD while DOWN)."""

    device: str
    state: LinkState
    reason: str
    time: datetime
    tags: tuple[str, ...]


LinkEventCallback = Callable[[LinkEvent], None]


@dataclass(slots=True)
class PollStats:
    """How one poll group keeps its schedule."""

    device: str
    scan_class: str
    period: float
    points: tuple[str, ...]
    cycles: int = 0
    overruns: int = 0
    """Cycles skipped because a read was still running when they were due."""
    failures: int = 0
    """Reads that raised instead of returning samples."""
    last_read_s: float = 0.0
    max_read_s: float = 0.0


def link_reason(reason: str) -> str:
    """Tag reasons for a dead link all start with ``link down:``, whatever the driver said."""
    return reason if reason.startswith("link down") else f"link down: {reason or 'no reason'}"


class Scanner:
    """Starts the drivers, keeps the tag table current, reports link changes.

    ``drivers`` maps device names to drivers; every device with tags in
    ``table`` needs one. ``scan_classes`` gives each scan class's period in
    seconds.
    """

    def __init__(
        self,
        table: TagTable,
        drivers: Mapping[str, Driver],
        scan_classes: Mapping[str, float],
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        on_link: LinkEventCallback | None = None,
    ) -> None:
        self.table = table
        self.drivers = dict(drivers)
        self.on_link = on_link
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._groups: list[PollStats] = []
        self._subscribed: dict[str, tuple[str, ...]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._hooked = False
        by_device = table.devices()
        missing = sorted(set(by_device) - set(self.drivers))
        if missing:
            raise ValueError(f"no driver for device(s) {', '.join(missing)}")
        for device, names in by_device.items():
            if isinstance(self.drivers[device], Subscribing):
                self._subscribed[device] = names
                continue
            classes: dict[str, list[str]] = {}
            for name in names:
                classes.setdefault(table.definition(name).scan_class, []).append(name)
            for scan_class, points in classes.items():
                if scan_class not in scan_classes:
                    raise ValueError(f"unknown scan class {scan_class!r} (device {device})")
                period = float(scan_classes[scan_class])
                if period <= 0:
                    raise ValueError(f"scan class {scan_class!r} needs a positive period")
                self._groups.append(PollStats(device, scan_class, period, tuple(points)))

    # -- life cycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Start every driver, subscribe, and begin polling; returns once all have begun."""
        if self._running:
            return
        self._running = True
        if not self._hooked:
            for device, driver in self.drivers.items():
                driver.on_link_change(functools.partial(self._link_changed, device))
            self._hooked = True
        await asyncio.gather(*(self._start_driver(d) for d in self.drivers))
        for device, names in self._subscribed.items():
            await self._subscribe(device, names)
        for group in self._groups:
            name = f"poll:{group.device}:{group.scan_class}"
            self._tasks.append(asyncio.create_task(self._poll(group), name=name))

    async def stop(self) -> None:
        """Stop polling and every driver; the table keeps the last values."""
        self._running = False
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        results = await asyncio.gather(
            *(d.stop() for d in self.drivers.values()), return_exceptions=True
        )
        for device, result in zip(self.drivers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("device %s did not stop cleanly: %r", device, result)

    def stats(self) -> list[PollStats]:
        """A copy of each poll group's counters."""
        return [replace(g) for g in self._groups]

    # -- drivers ------------------------------------------------------------------------

    async def _start_driver(self, device: str) -> None:
        try:
            await self.drivers[device].start()
        except Exception as exc:
            log.exception("device %s failed to start", device)
            self._link_changed(device, LinkState.DOWN, f"driver failed to start: {exc}")

    async def _subscribe(self, device: str, names: tuple[str, ...]) -> None:
        driver = self.drivers[device]
        assert isinstance(driver, Subscribing)
        try:
            await driver.subscribe(names, functools.partial(self._samples, device))
        except Exception as exc:
            log.exception("device %s: subscription failed", device)
            reason = f"subscription failed: {exc}"
            self._samples(device, [Sample(n, None, DriverQuality.BAD, reason) for n in names])

    def _samples(self, device: str, samples: Sequence[Sample]) -> None:
        self.table.apply(device, samples)

    def _link_changed(self, device: str, state: LinkState, reason: str) -> None:
        if not self._running:
            return
        if state is LinkState.DOWN:
            reason = link_reason(reason)
            self.table.set_device_quality(device, Quality.BAD, reason)
        if self.on_link is None:
            return
        tags = self.table.devices().get(device, ())
        try:
            self.on_link(LinkEvent(device, state, reason, self._clock.now(), tags))
        except Exception:
            log.exception("link event callback failed for device %s", device)

    # -- polling ------------------------------------------------------------------------

    async def _read(self, group: PollStats) -> list[Sample]:
        try:
            return await self.drivers[group.device].read(group.points)
        except asyncio.CancelledError:
            raise
        except DriverError as exc:
            group.failures += 1
            reason = str(exc)
        except Exception as exc:
            group.failures += 1
            log.exception("device %s: read of %s failed", group.device, group.scan_class)
            reason = f"read failed: {type(exc).__name__}: {exc}"
        return [Sample(p, None, DriverQuality.BAD, reason) for p in group.points]

    async def _poll(self, group: PollStats) -> None:
        clock, period = self._clock, group.period
        due = clock.monotonic()
        while self._running:
            started = clock.monotonic()
            samples = await self._read(group)
            try:
                self.table.apply(group.device, samples)
            except Exception:
                log.exception("device %s: applying samples failed", group.device)
            ended = clock.monotonic()
            took = ended - started
            group.cycles += 1
            group.last_read_s = took
            group.max_read_s = max(group.max_read_s, took)
            due += period
            if ended > due:
                missed = int((ended - due) // period) + 1
                group.overruns += missed
                due += missed * period
            await self._sleep(due - ended)
