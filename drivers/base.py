"""What every device driver offers, and what it reports.

Drivers know nothing of users, audit trails or screens. They turn device
traffic into ``Sample`` values with a quality and a reason, and turn a write
into a device write that is read back. Per-point trouble is data (a BAD
sample naming why); a dead link is a ``LinkState`` change plus BAD samples;
only misuse of the driver itself raises.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

Value = bool | int | float | str | bytes
"""A device value in engineering units (after scaling), or raw bytes."""


class Quality(enum.Enum):
    GOOD = "GOOD"
    UNCERTAIN = "UNCERTAIN"
    BAD = "BAD"


class LinkState(enum.Enum):
    CONNECTING = "CONNECTING"
    UP = "UP"
    DOWN = "DOWN"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Sample:
    """One value of one point, as the driver saw it. Treat it as immutable.

    Not a frozen dataclass: a frozen one costs three times as much to build,
    and a scan builds one per point per cycle (measured in bench/bench_modbus.py).

    ``source_time`` is the device's own timestamp where the protocol gives one
    (OPC UA SourceTimestamp); ``server_time`` is when this host received it.
    ``reason`` says why the quality is not GOOD (e.g. the Modbus exception or
    the OPC UA status code name).
    """

    point: str
    value: Value | None
    quality: Quality
    reason: str = ""
    source_time: datetime | None = None
    server_time: datetime = field(default_factory=utc_now)

    @property
    def good(self) -> bool:
        return self.quality is Quality.GOOD


class DriverError(Exception):
    """Base of every driver failure."""


class LinkDown(DriverError):
    """The device cannot be reached (connection refused, closed or timed out)."""


class DeviceRefused(DriverError):
    """The device answered with a refusal (Modbus exception, OPC UA bad status)."""


class WriteNotConfirmed(DriverError):
    """The write was sent but reading the value back did not show it."""


class PointError(DriverError):
    """The point is unknown to this driver, not writable, or the value cannot be encoded."""


SampleCallback = Callable[[Sequence[Sample]], None]
LinkCallback = Callable[[LinkState, str], None]


@runtime_checkable
class Driver(Protocol):
    """A connection to one device.

    ``start`` returns once the first connection attempt has finished (up or
    down); a driver whose link is down keeps retrying with capped exponential
    backoff until ``stop``.
    """

    name: str

    @property
    def link_state(self) -> LinkState: ...

    def on_link_change(self, callback: LinkCallback) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def read(self, points: Sequence[str]) -> list[Sample]: ...

    async def write(self, point: str, value: Value) -> Sample:
        """Write ``value`` and return the sample read back after the write."""
        ...


@runtime_checkable
class Subscribing(Protocol):
    """A driver whose device pushes changes (OPC UA subscriptions)."""

    async def subscribe(self, points: Sequence[str], callback: SampleCallback) -> None: ...


@runtime_checkable
class MethodCalling(Protocol):
    """A driver that can call methods on the device (OPC UA methods)."""

    async def call(self, object_id: str, method_id: str, *args: Value) -> list[Value]: ...


@runtime_checkable
class DeviceClock(Protocol):
    """A driver whose device tells its own time (OPC UA ``Server_ServerStatus_CurrentTime``).

    The runtime compares it with the host's clock: a device whose clock has
    drifted stamps its values (``Sample.source_time``) with the wrong time.
    """

    async def device_time(self) -> datetime:
        """The device's current time, UTC and timezone-aware; ``LinkDown`` if unreachable."""
        ...


Backoff = Callable[[int], Awaitable[None]]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` until every one has ended.

    One cancel is not always enough: on Python 3.11, ``asyncio.wait_for`` (which
    pymodbus uses for every reply) drops a cancellation that lands just as the
    awaited result arrives (CPython gh-86296), and a loop that should stop
    polls on instead.
    """
    while pending := [t for t in tasks if not t.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.1)
