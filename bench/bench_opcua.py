"""OPC UA data-change notifications per second through OpcUaDriver against raw asyncua.

The simulated microscope, in a child process as a real instrument would be
another machine, changes ``SIGNALS`` Double variables (objects of 100) ten
times a second. The same variables are subscribed either through the driver
(subscription, monitored items, a Sample per notification, batched callback)
or through a plain asyncua subscription in iterator mode counting
DataChangeEvents. Both sides connect fresh for each window and are measured
in alternating windows (driver, raw, driver, raw, ...) so that drift in
machine load hits both alike. Goal: driver ≥ 80 % of the raw notifications
per second. Client CPU per notification is reported too (process time of
this process, which holds only the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from asyncua import Client
from asyncua.common.subscription import DataChangeEvent

from drivers.base import Sample
from drivers.opcua import OpcUaDriver, OpcUaPoint, OpcUaSettings
from drivers.sim.microscope import bench_node_id

SIGNALS = 500
RATE_HZ = 10
WARMUP_S = 0.6
WINDOW_S = 1.5
ROUNDS = 3
GOAL = 0.80

SERVER_CHILD = f"""
import asyncio, sys
from drivers.sim.microscope import MicroscopeServer

async def main():
    async with MicroscopeServer(tick={1 / RATE_HZ}, bench_signals={SIGNALS}) as srv:
        print(srv.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

Counter = Callable[[], int]
Closer = Callable[[], Awaitable[None]]
Opener = Callable[[], Awaitable[tuple[Counter, Closer]]]


async def _window(open_side: Opener) -> tuple[float, float]:
    """Notifications per second and client CPU µs per notification over one window."""
    count, close = await open_side()
    try:
        await asyncio.sleep(WARMUP_S)
        n0, t0, c0 = count(), time.perf_counter(), time.process_time()
        await asyncio.sleep(WINDOW_S)
        n1, t1, c1 = count(), time.perf_counter(), time.process_time()
    finally:
        await close()
    notifications = n1 - n0
    rate = notifications / (t1 - t0)
    cpu_us = (c1 - c0) / notifications * 1e6 if notifications else float("inf")
    return rate, cpu_us


def _driver_side(url: str, dropped: list[int]) -> Opener:
    points = [OpcUaPoint(f"S{i}", bench_node_id(i)) for i in range(SIGNALS)]
    settings = OpcUaSettings(url, publishing_interval_ms=50.0, sampling_interval_ms=0.0)

    async def open_side() -> tuple[Counter, Closer]:
        driver = OpcUaDriver("bench", settings, points)
        got = [0]

        def on_samples(batch: Sequence[Sample]) -> None:
            got[0] += len(batch)

        await driver.start()
        await driver.subscribe([p.name for p in points], on_samples)

        async def close() -> None:
            dropped.append(driver.dropped_notifications)
            await driver.stop()

        return (lambda: got[0]), close

    return open_side


def _raw_side(url: str) -> Opener:
    async def open_side() -> tuple[Counter, Closer]:
        client = Client(url)
        await client.connect()
        sub = await client.create_subscription(50.0, queue_maxsize=100_000)
        nodes = [client.get_node(bench_node_id(i)) for i in range(SIGNALS)]
        await sub.subscribe_data_change(nodes, sampling_interval=0.0)
        got = [0]

        async def consume() -> None:
            async for event in sub:
                if isinstance(event, DataChangeEvent):
                    got[0] += 1

        task = asyncio.create_task(consume())

        async def close() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.disconnect()

        return (lambda: got[0]), close

    return open_side


@contextlib.asynccontextmanager
async def _server_process() -> AsyncIterator[int]:
    """The simulated microscope in a child process; yields its port, ends when stdin closes."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER_CHILD,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
        yield int(line)
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), timeout=5)
        except TimeoutError:
            child.kill()
            await child.wait()


async def _run() -> dict[str, Any]:
    import logging

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    async with _server_process() as port:
        url = f"opc.tcp://127.0.0.1:{port}"
        dropped: list[int] = []
        driver_side, raw_side = _driver_side(url, dropped), _raw_side(url)
        driver_rates: list[float] = []
        raw_rates: list[float] = []
        driver_cpu: list[float] = []
        raw_cpu: list[float] = []
        for _ in range(ROUNDS):
            rate, cpu = await _window(driver_side)
            driver_rates.append(rate)
            driver_cpu.append(cpu)
            rate, cpu = await _window(raw_side)
            raw_rates.append(rate)
            raw_cpu.append(cpu)
    ratios = [d / r for d, r in zip(driver_rates, raw_rates, strict=True)]
    ratio = round(statistics.median(ratios), 3)
    return {
        "name": "opcua",
        "figures": {
            "signals": SIGNALS,
            "offered_changes_per_s": SIGNALS * RATE_HZ,
            "driver_notifications_per_s": round(statistics.median(driver_rates)),
            "raw_notifications_per_s": round(statistics.median(raw_rates)),
            "driver_client_cpu_us_per_notification": round(statistics.median(driver_cpu), 1),
            "raw_client_cpu_us_per_notification": round(statistics.median(raw_cpu), 1),
            "driver_dropped_notifications": sum(dropped),
            "ratio_per_round": [round(r, 3) for r in ratios],
        },
        "goals": {
            "driver notifications/s ≥ 80% of raw asyncua subscription": {
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
