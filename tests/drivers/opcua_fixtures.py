"""Fixtures and helpers for the OPC UA driver and microscope simulator tests.

Test modules import the ``*_fixture`` functions; pytest registers them under
their ``name`` (``ua_server`` ...), so test parameters do not shadow imports.
Servers are real asyncua servers on 127.0.0.1 with port 0. Starting one costs
one to two seconds (asyncua builds its standard address space), so the plain
server is shared per module; tests that stop or reconfigure a server get
their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from drivers.base import LinkState, Sample
from drivers.opcua import OpcUaDriver, OpcUaPoint, OpcUaSettings
from drivers.sim import microscope as mic
from drivers.sim.certs import CertPair, write_self_signed
from drivers.sim.microscope import MicroscopeServer, SimPolicy

USERS = {"operator": "Correct-Horse-42"}

POINTS = [
    OpcUaPoint("focus", mic.FOCUS, writable=True),
    OpcUaPoint("illumination", mic.ILLUMINATION, writable=True),
    OpcUaPoint("stage_x", mic.STAGE_X, writable=True),
    OpcUaPoint("objective", mic.OBJECTIVE, writable=True),
    OpcUaPoint("focus_actual", mic.FOCUS_ACTUAL),
    OpcUaPoint("illumination_actual", mic.ILLUMINATION_ACTUAL),
    OpcUaPoint("stage_ready", mic.STAGE_READY),
    OpcUaPoint("capture_count", mic.CAPTURE_COUNT),
    OpcUaPoint("missing", "ns=2;s=MIC1.NoSuchNode"),
]


async def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = 10.0, interval: float = 0.01
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what}")
        await asyncio.sleep(interval)


@dataclass
class Collector:
    """A SampleCallback that keeps every sample and the latest one per point."""

    samples: list[Sample] = field(default_factory=list)
    latest: dict[str, Sample] = field(default_factory=dict)

    def __call__(self, batch: Sequence[Sample]) -> None:
        for s in batch:
            self.samples.append(s)
            self.latest[s.point] = s

    def has(self, point: str, predicate: Callable[[Sample], bool]) -> bool:
        s = self.latest.get(point)
        return s is not None and predicate(s)


@dataclass
class LinkLog:
    events: list[tuple[LinkState, str]] = field(default_factory=list)

    def __call__(self, state: LinkState, reason: str) -> None:
        self.events.append((state, reason))


@dataclass
class RecordingSleep:
    """Injected backoff sleep: records requested delays, waits only briefly."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0.02)


DriverFactory = Callable[..., OpcUaDriver]


@pytest_asyncio.fixture(name="ua_server", scope="module", loop_scope="module")
async def ua_server_fixture() -> AsyncIterator[MicroscopeServer]:
    """A strict microscope server, shared by a module, advanced only by ``step``."""
    async with MicroscopeServer(strict=True, tick=None) as srv:
        yield srv


@pytest.fixture(name="ua_certs", scope="module")
def ua_certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertPair]:
    directory: Path = tmp_path_factory.mktemp("pki")
    return {
        "server": write_self_signed(directory, "microscope", mic.APPLICATION_URI),
        "client": write_self_signed(directory, "custos", "urn:custos:hmi:opcua-client"),
    }


@pytest_asyncio.fixture(name="ua_secure_server", scope="module", loop_scope="module")
async def ua_secure_server_fixture(
    ua_certs: dict[str, CertPair],
) -> AsyncIterator[MicroscopeServer]:
    """Basic256Sha256 (Sign and SignAndEncrypt) only, username/password login only."""
    srv = MicroscopeServer(
        policies=(SimPolicy.BASIC256SHA256_SIGN, SimPolicy.BASIC256SHA256_SIGN_AND_ENCRYPT),
        certificate=ua_certs["server"].cert,
        private_key=ua_certs["server"].key,
        users=USERS,
        strict=True,
        tick=None,
    )
    async with srv:
        yield srv


@pytest_asyncio.fixture(name="ua_drivers", loop_scope="module")
async def ua_drivers_fixture() -> AsyncIterator[DriverFactory]:
    """Make drivers with fast timeouts; every one made is stopped at teardown."""
    made: list[OpcUaDriver] = []

    def make(
        url: str,
        points: Sequence[OpcUaPoint] = POINTS,
        sleep: RecordingSleep | None = None,
        **settings: object,
    ) -> OpcUaDriver:
        options: dict[str, object] = {
            "publishing_interval_ms": 50.0,
            "sampling_interval_ms": 0.0,
            "request_timeout_s": 2.0,
            "connect_timeout_s": 5.0,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.2,
            **settings,
        }
        conf = OpcUaSettings(url, **options)  # type: ignore[arg-type]
        driver = OpcUaDriver("mic", conf, points, sleep=sleep or RecordingSleep())
        made.append(driver)
        return driver

    yield make
    for driver in made:
        await driver.stop()
