"""Shared fixtures for driver tests: a real simulated PLC on 127.0.0.1 and fast reconnects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest

from drivers.base import LinkState
from drivers.modbus import ModbusDriver, ModbusPoint, ModbusSettings
from drivers.sim.plc import BioreactorPLC

Condition = Callable[[], bool]
Eventually = Callable[..., Awaitable[None]]


async def _eventually(condition: Condition, timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what or condition}")
        await asyncio.sleep(0.01)


@pytest.fixture
def eventually() -> Eventually:
    """Poll a condition until it holds or a deadline passes (no fixed sleeps)."""
    return _eventually


@pytest.fixture
async def plc() -> AsyncIterator[BioreactorPLC]:
    async with BioreactorPLC(host="127.0.0.1", port=0, unit=1) as sim:
        yield sim


@dataclass
class FastSleep:
    """Records the backoff delays a driver asks for and waits only a few milliseconds."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0.005)


@pytest.fixture
def fast_sleep() -> FastSleep:
    return FastSleep()


@dataclass
class LinkLog:
    events: list[tuple[LinkState, str]] = field(default_factory=list)

    def __call__(self, state: LinkState, reason: str) -> None:
        self.events.append((state, reason))

    @property
    def states(self) -> list[LinkState]:
        return [s for s, _ in self.events]


MakeDriver = Callable[..., Awaitable[tuple[ModbusDriver, LinkLog]]]


@pytest.fixture
async def make_driver(fast_sleep: FastSleep) -> AsyncIterator[MakeDriver]:
    """Build, start and (at teardown) stop a driver with short timeouts."""
    started: list[ModbusDriver] = []

    async def make(
        port: int, points: Sequence[ModbusPoint], **settings: object
    ) -> tuple[ModbusDriver, LinkLog]:
        options: dict[str, object] = {"host": "127.0.0.1", "port": port, "timeout": 0.3}
        options.update(settings)
        driver = ModbusDriver("skid", points, ModbusSettings(**options), sleep=fast_sleep)
        log = LinkLog()
        driver.on_link_change(log)
        started.append(driver)
        await driver.start()
        return driver, log

    yield make
    for driver in started:
        await driver.stop()
