"""Scanner scheduling on a fake clock: no drift, overruns skipped and counted, link loss.

The driver here is an in-process Driver (no protocol at all) whose reads take
a chosen amount of fake time; the sleep advances the same fake clock, so the
schedule is checked exactly and without waiting for wall time.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Sequence

import pytest

from drivers.base import LinkCallback, LinkState, Quality, Sample, Value
from hmi.core.clock import FakeClock
from hmi.core.scanner import LinkEvent, Scanner
from hmi.core.tag_table import TagDef, TagTable
from hmi.core.tags import Quality as TagQuality

pytestmark = pytest.mark.timeout(10)


class TimedDriver:
    """Reads take ``read_s`` of fake time; records when each read started."""

    def __init__(self, name: str, clock: FakeClock, read_s: float) -> None:
        self.name = name
        self.clock = clock
        self.read_s = read_s
        self.starts: list[tuple[float, tuple[str, ...]]] = []
        self.callbacks: list[LinkCallback] = []
        self.state = LinkState.CONNECTING

    @property
    def link_state(self) -> LinkState:
        return self.state

    def on_link_change(self, callback: LinkCallback) -> None:
        self.callbacks.append(callback)

    def set_link(self, state: LinkState, reason: str) -> None:
        self.state = state
        for cb in self.callbacks:
            cb(state, reason)

    async def start(self) -> None:
        self.set_link(LinkState.UP, "connected")

    async def stop(self) -> None:
        self.state = LinkState.DOWN

    async def read(self, points: Sequence[str]) -> list[Sample]:
        self.starts.append((self.clock.monotonic(), tuple(points)))
        self.clock.advance(self.read_s)
        return [Sample(p, float(len(self.starts)), Quality.GOOD) for p in points]

    async def write(self, point: str, value: Value) -> Sample:
        raise NotImplementedError


class VirtualTime:
    """Sleeps wait on the fake clock; ``run_until`` moves it to the next sleeper's deadline."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self.count = 0

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.count += 1
        due = self.clock.monotonic() + max(0.0, delay)
        heapq.heappush(self.sleepers, (due, self.count, future))
        await future

    async def run_until(self, condition: Callable[[], bool], limit: int = 10_000) -> None:
        for _ in range(limit):
            for _ in range(5):
                await asyncio.sleep(0)
            if condition():
                return
            if self.sleepers:
                due, _, future = heapq.heappop(self.sleepers)
                self.clock.advance(max(0.0, due - self.clock.monotonic()))
                future.set_result(None)
        raise AssertionError("condition not reached")


def make(read_s: float, defs: list[TagDef], classes: dict[str, float]):
    clock = FakeClock()
    time = VirtualTime(clock)
    driver = TimedDriver("PLC1", clock, read_s)
    table = TagTable(defs, clock=clock)
    events: list[LinkEvent] = []
    scanner = Scanner(
        table, {"PLC1": driver}, classes, clock=clock, sleep=time.sleep, on_link=events.append
    )
    return time, driver, table, scanner, events


async def test_absolute_schedule_does_not_drift_by_the_read_time() -> None:
    time, driver, _, scanner, _ = make(
        0.3, [TagDef("A", "PLC1", "hr:0", "uint16")], {"normal": 1.0}
    )
    start = time.clock.monotonic()
    await scanner.start()
    await time.run_until(lambda: len(driver.starts) >= 6)
    await scanner.stop()
    offsets = [round(t - start, 9) for t, _ in driver.starts[:6]]
    assert offsets == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert scanner.stats()[0].overruns == 0


async def test_a_slow_read_skips_cycles_instead_of_piling_up() -> None:
    time, driver, _, scanner, _ = make(
        2.5, [TagDef("A", "PLC1", "hr:0", "uint16")], {"normal": 1.0}
    )
    start = time.clock.monotonic()
    await scanner.start()
    await time.run_until(lambda: len(driver.starts) >= 3)
    await scanner.stop()
    offsets = [round(t - start, 9) for t, _ in driver.starts[:3]]
    assert offsets == [0.0, 3.0, 6.0]
    stats = scanner.stats()[0]
    assert stats.overruns >= 4 and stats.max_read_s == pytest.approx(2.5)


async def test_one_poll_group_per_scan_class_with_its_own_period() -> None:
    defs = [
        TagDef("FAST", "PLC1", "ir:0", "float32", scan_class="fast"),
        TagDef("SLOW", "PLC1", "hr:0", "float32", scan_class="slow"),
    ]
    time, driver, table, scanner, _ = make(0.0, defs, {"fast": 0.5, "slow": 5.0})
    await scanner.start()
    await time.run_until(lambda: sum(p == ("FAST",) for _, p in driver.starts) >= 11)
    await scanner.stop()
    assert sum(p == ("SLOW",) for _, p in driver.starts) in (2, 3)
    assert {(s.scan_class, s.period) for s in scanner.stats()} == {("fast", 0.5), ("slow", 5.0)}
    assert table.get("FAST").quality is TagQuality.GOOD


async def test_link_down_marks_every_tag_bad_and_reports_a_link_event() -> None:
    defs = [TagDef("A", "PLC1", "hr:0", "uint16"), TagDef("B", "PLC1", "hr:1", "uint16")]
    time, driver, table, scanner, events = make(0.0, defs, {"normal": 1.0})
    await scanner.start()
    await time.run_until(lambda: table.get("B").quality is TagQuality.GOOD)
    driver.set_link(LinkState.DOWN, "connection to 10.0.0.9:502 lost")
    assert [(e.device, e.state) for e in events] == [
        ("PLC1", LinkState.UP),
        ("PLC1", LinkState.DOWN),
    ]
    assert events[1].reason == "link down: connection to 10.0.0.9:502 lost"
    assert events[1].tags == ("A", "B")
    assert all(table.get(n).quality is TagQuality.BAD for n in ("A", "B"))
    assert table.get("A").reason == "link down: connection to 10.0.0.9:502 lost"
    await scanner.stop()
    driver.set_link(LinkState.DOWN, "after stop")
    assert len(events) == 2


def test_every_device_needs_a_driver_and_every_scan_class_a_period() -> None:
    clock = FakeClock()
    table = TagTable([TagDef("A", "PLC1", "hr:0", "uint16", scan_class="rare")], clock=clock)
    with pytest.raises(ValueError, match="no driver for device"):
        Scanner(table, {}, {"normal": 1.0})
    with pytest.raises(ValueError, match="unknown scan class 'rare'"):
        Scanner(table, {"PLC1": TimedDriver("PLC1", clock, 0)}, {"normal": 1.0})
