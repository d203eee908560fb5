"""Modbus read throughput through ModbusDriver against raw pymodbus reads of the same blocks.

The driver adds planning, a check of every reply, decoding of every point
and a Sample per point on top of pymodbus. That overhead must stay small
next to the network round trip: goal, driver ≥ 80 % of the registers per
second that raw pymodbus reads of the very same requests achieve, measured
in the same run against the same simulated PLC on 127.0.0.1. The PLC runs in
a child process, as a real device would be another machine: in the same
process its work would be charged to the driver's event loop.

Two point sets are measured, each in alternating windows (driver, raw,
driver, raw, ...) so that drift in machine load hits both sides alike:

- ``plant``: a plant-like mix, float32 setpoints and process values in
  holding registers plus 16-bit status words in input registers (the goal);
- ``uint16``: every register its own point, the most decoding per register
  (reported, not a goal).

The ratio reported is the median over many short paired windows, which
keeps load spikes from other processes on the machine out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from drivers.modbus import ModbusDriver, ModbusPoint, ModbusSettings, ReadBlock, plan_reads

PLC_CHILD = """
import asyncio, sys
from drivers.sim.plc import BioreactorPLC

async def main():
    async with BioreactorPLC(host="127.0.0.1", port=0) as plc:
        print(plc.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

WINDOW_S = 0.25
ROUNDS = 16
GOAL = 0.80


def plant_points() -> list[ModbusPoint]:
    floats = [ModbusPoint(f"F{i}", "holding_register", 100 + 2 * i, "float32") for i in range(124)]
    words = [ModbusPoint(f"W{i}", "input_register", 100 + i, "uint16") for i in range(125)]
    return floats + words


def uint16_points() -> list[ModbusPoint]:
    return [ModbusPoint(f"U{i}", "holding_register", 100 + i, "uint16") for i in range(375)]


async def _window(call: Callable[[], Awaitable[int]]) -> tuple[float, list[float]]:
    """Registers per second over one window, and each pass's latency in ms."""
    registers = 0
    latencies: list[float] = []
    begin = time.perf_counter()
    while (now := time.perf_counter()) - begin < WINDOW_S:
        registers += await call()
        latencies.append((time.perf_counter() - now) * 1000)
    return registers / (time.perf_counter() - begin), latencies


async def _measure(port: int, points: list[ModbusPoint]) -> dict[str, Any]:
    settings = ModbusSettings(host="127.0.0.1", port=port, timeout=2.0)
    driver = ModbusDriver("bench", points, settings)
    await driver.start()
    raw = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0, retries=0, reconnect_delay=0)
    await raw.connect()
    names = [p.name for p in points]
    blocks: list[ReadBlock] = plan_reads(points)
    per_pass = sum(b.count for b in blocks)
    readers = {
        "coil": raw.read_coils,
        "discrete_input": raw.read_discrete_inputs,
        "holding_register": raw.read_holding_registers,
        "input_register": raw.read_input_registers,
    }

    async def through_driver() -> int:
        samples = await driver.read(names)
        if not all(s.good for s in samples):
            raise RuntimeError(f"driver read failed: {samples[0].reason}")
        return per_pass

    async def raw_pymodbus() -> int:
        for b in blocks:
            rr = await readers[b.table](b.address, count=b.count, device_id=1)
            if rr.isError() or len(rr.registers) != b.count:
                raise RuntimeError(f"raw read failed: {rr}")
        return per_pass

    try:
        await through_driver()
        await raw_pymodbus()
        driver_rates: list[float] = []
        raw_rates: list[float] = []
        driver_lat: list[float] = []
        raw_lat: list[float] = []
        for _ in range(ROUNDS):
            rate, lat = await _window(through_driver)
            driver_rates.append(rate)
            driver_lat += lat
            rate, lat = await _window(raw_pymodbus)
            raw_rates.append(rate)
            raw_lat += lat
    finally:
        raw.close()
        await driver.stop()
    ratios = [d / r for d, r in zip(driver_rates, raw_rates, strict=True)]
    return {
        "points": len(points),
        "requests_per_pass": len(blocks),
        "registers_per_pass": per_pass,
        "driver_registers_per_s": round(statistics.median(driver_rates)),
        "raw_registers_per_s": round(statistics.median(raw_rates)),
        "driver_points_per_s": round(statistics.median(driver_rates) * len(points) / per_pass),
        "driver_pass_p50_ms": round(statistics.median(driver_lat), 3),
        "raw_pass_p50_ms": round(statistics.median(raw_lat), 3),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_per_round": [round(r, 3) for r in ratios],
    }


@contextlib.asynccontextmanager
async def _plc_process() -> AsyncIterator[int]:
    """A simulated PLC in a child process; yields its port, ends it when stdin closes."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PLC_CHILD,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), timeout=10)
        yield int(line)
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), timeout=5)
        except TimeoutError:
            child.kill()
            await child.wait()


async def _run() -> dict[str, Any]:
    async with _plc_process() as port:
        plant = await _measure(port, plant_points())
        words = await _measure(port, uint16_points())
    ratio = plant["ratio_median"]
    return {
        "name": "modbus",
        "figures": {"plant": plant, "uint16": words},
        "goals": {
            "driver registers/s ≥ 80% of raw pymodbus (plant mix)": {
                "target": GOAL,
                "measured": ratio,
                "met": ratio >= GOAL,
            }
        },
    }


def run() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, ensure_ascii=False))
