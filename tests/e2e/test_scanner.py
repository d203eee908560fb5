"""The scanner on the simulated plant: configuration → drivers → tag table (SUP-1, -2, -4).

Real simulators on 127.0.0.1 with port 0; the configuration is written with
the ports they got, loaded and validated like a plant's, and the drivers are
built from it by ``hmi.plant``. Waits poll a condition against a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.base import LinkState
from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.core.config import load_config
from hmi.core.scanner import LinkEvent
from hmi.core.tags import Quality, TagChange
from hmi.plant import Plant, build_plant

pytestmark = pytest.mark.timeout(40)

PLANT = """
[plant]
name = "Scanner test plant"
[scan_classes]
fast = 0.05
normal = 0.1
"""

DEVICES = """
[[device]]
name = "PLC1"
kind = "modbus"
host = "127.0.0.1"
port = {modbus_port}
timeout_s = 0.5
reconnect_max_s = 0.3

[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "{opcua_url}"
sampling_ms = 0
publishing_ms = 50
timeout_s = 2.0
reconnect_max_s = 0.3
"""

TAGS = """
[[tag]]
name = "BR101.TEMP_PV"
device = "PLC1"
address = "ir:0"
type = "float32"
units = "°C"
deadband = 0.5
scan_class = "fast"

[[tag]]
name = "BR101.DO_PV"
device = "PLC1"
address = "30005"
type = "float32"
low = 0.0
high = 100.0
deadband_percent = 2.0
scan_class = "fast"

[[tag]]
name = "BR101.TEMP_SP"
device = "PLC1"
address = "hr:0"
type = "float32"
writable = true
low = 4.0
high = 45.0

[[tag]]
name = "BR101.FEED_PUMP"
device = "PLC1"
address = "coil:0"
type = "bool"
writable = true
scan_class = "fast"

[[tag]]
name = "BR101.BATCH_ID"
device = "PLC1"
address = "hr:12"
type = "string"
length = 8
writable = true

[[tag]]
name = "MIC1.FocusActual"
device = "MIC1"
address = "ns=2;s=MIC1.FocusActual"
type = "float64"
deadband = 0.5

[[tag]]
name = "MIC1.Illumination"
device = "MIC1"
address = "ns=2;s=MIC1.Illumination"
type = "float64"
writable = true
low = 0.0
high = 100.0

[[tag]]
name = "MIC1.IlluminationActual"
device = "MIC1"
address = "ns=2;s=MIC1.IlluminationActual"
type = "float64"
"""

PLC_TAGS = ("BR101.TEMP_PV", "BR101.DO_PV", "BR101.TEMP_SP", "BR101.FEED_PUMP", "BR101.BATCH_ID")
MIC_TAGS = ("MIC1.FocusActual", "MIC1.Illumination", "MIC1.IlluminationActual")


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what}")
        await asyncio.sleep(0.01)


@dataclass
class Running:
    plant: Plant
    events: list[LinkEvent]
    changes: list[TagChange]

    def value(self, tag: str) -> object:
        v = self.plant.table.get(tag)
        return v.value if v.quality is Quality.GOOD else None

    def logged(self, tag: str) -> list[object]:
        return [c.value for c in self.changes if c.tag == tag]

    def links(self, device: str) -> list[LinkState]:
        return [e.state for e in self.events if e.device == device]


@pytest.fixture
async def plc() -> AsyncIterator[BioreactorPLC]:
    async with BioreactorPLC(host="127.0.0.1", port=0) as sim:
        yield sim


@pytest.fixture
async def microscope() -> AsyncIterator[MicroscopeServer]:
    async with MicroscopeServer(host="127.0.0.1", port=0, tick=None) as srv:
        yield srv


@pytest.fixture
async def running(
    tmp_path: Path, plc: BioreactorPLC, microscope: MicroscopeServer
) -> AsyncIterator[Running]:
    (tmp_path / "plant.toml").write_text(PLANT)
    (tmp_path / "devices.toml").write_text(
        DEVICES.format(modbus_port=plc.port, opcua_url=microscope.url)
    )
    (tmp_path / "tags.toml").write_text(TAGS)
    events: list[LinkEvent] = []
    plant = build_plant(load_config(tmp_path), on_link=events.append)
    changes: list[TagChange] = []
    plant.table.subscribe(changes.append)
    await plant.start()
    try:
        yield Running(plant, events, changes)
    finally:
        await plant.stop()


async def test_polls_the_plc_and_takes_opcua_values_from_the_subscription(
    running: Running, plc: BioreactorPLC, microscope: MicroscopeServer
) -> None:
    table = running.plant.table
    await eventually(lambda: running.value("BR101.TEMP_SP") == 37.0, "initial setpoint")
    await eventually(lambda: running.value("MIC1.FocusActual") == 1000.0, "initial focus")
    assert table.get("MIC1.FocusActual").source_time is not None
    assert running.value("BR101.BATCH_ID") == "" and running.value("BR101.FEED_PUMP") is False

    plc.set("TEMP_SP", 30.5)
    plc.set("BATCH_ID", "B-0042")
    plc.set("FEED_PUMP", True)
    await eventually(
        lambda: (
            running.value("BR101.TEMP_SP") == 30.5
            and running.value("BR101.BATCH_ID") == "B-0042"
            and running.value("BR101.FEED_PUMP") is True
        ),
        "new PLC values in the table",
    )
    assert running.logged("BR101.TEMP_SP") == [37.0, 30.5]
    assert running.logged("BR101.BATCH_ID") == ["", "B-0042"]

    await running.plant.drivers["MIC1"].write("MIC1.Illumination", 80.0)
    await microscope.step(3.0)
    await eventually(
        lambda: (running.value("MIC1.IlluminationActual") or 0) > 79.0, "lamp output follows"
    )
    await eventually(lambda: running.value("MIC1.Illumination") == 80.0, "setpoint pushed")
    actors = {c.tag.split(".")[0]: c.actor for c in running.changes}
    assert actors == {"BR101": "device:PLC1", "MIC1": "device:MIC1"}
    assert running.links("PLC1") == [LinkState.UP]
    assert running.links("MIC1") == [LinkState.CONNECTING, LinkState.UP]
    assert all(s.failures == 0 for s in running.plant.scanner.stats())


async def test_deadband_suppresses_small_changes_and_logs_big_ones(
    running: Running, plc: BioreactorPLC
) -> None:
    async def serve(name: str, value: float) -> None:
        plc.set(name, value)
        tag = f"BR101.{name}"
        await eventually(lambda: running.value(tag) == pytest.approx(value), f"{tag} = {value}")

    await serve("TEMP_PV", 20.0)
    await serve("DO_PV", 100.0)
    await serve("TEMP_PV", 30.0)
    await serve("TEMP_PV", 30.3)
    await serve("TEMP_PV", 30.45)
    await serve("TEMP_PV", 30.6)
    await serve("DO_PV", 50.0)
    await serve("DO_PV", 51.5)
    await serve("DO_PV", 52.5)
    assert running.logged("BR101.TEMP_PV") == [20.0, 30.0, pytest.approx(30.6)]
    assert running.logged("BR101.DO_PV") == [100.0, 50.0, 52.5]


async def test_a_killed_plc_turns_its_tags_bad_with_a_link_event_and_comes_back(
    running: Running, plc: BioreactorPLC, microscope: MicroscopeServer
) -> None:
    table = running.plant.table
    await eventually(lambda: all(running.value(t) is not None for t in PLC_TAGS + MIC_TAGS), "up")
    port = plc.port

    await plc.stop()
    await eventually(lambda: running.links("PLC1")[-1:] == [LinkState.DOWN], "link event")
    down = next(e for e in running.events if e.state is LinkState.DOWN)
    assert down.reason.startswith("link down: ") and set(down.tags) == set(PLC_TAGS)
    for tag in PLC_TAGS:
        v = table.get(tag)
        assert v.quality is Quality.BAD and v.value is None and v.reason.startswith("link down: ")
    assert all(running.value(t) is not None for t in MIC_TAGS)
    await asyncio.sleep(0.3)
    bad = [c.tag for c in running.changes if c.quality is Quality.BAD]
    assert sorted(bad) == sorted(PLC_TAGS), "each tag turns BAD once, however often it is polled"

    async with BioreactorPLC(host="127.0.0.1", port=port) as again:
        again.set("TEMP_PV", 33.0)
        await eventually(lambda: running.links("PLC1")[-1:] == [LinkState.UP], "link back up")
        await eventually(lambda: running.value("BR101.TEMP_PV") == 33.0, "values again")
        await eventually(lambda: all(running.value(t) is not None for t in PLC_TAGS), "all good")
    assert running.links("PLC1") == [LinkState.UP, LinkState.DOWN, LinkState.UP]

    await microscope.stop()
    await eventually(lambda: running.links("MIC1")[-1:] == [LinkState.DOWN], "OPC UA link down")
    await eventually(lambda: all(running.value(t) is None for t in MIC_TAGS), "MIC1 tags BAD")
    assert all(table.get(t).reason.startswith("link down: ") for t in MIC_TAGS)
