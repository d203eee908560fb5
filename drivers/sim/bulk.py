"""Bulk Modbus TCP devices for load tests: many float32 values that change every period.

A plant of thousands of tags needs devices with thousands of registers, and
those must change the way process values do, so that history logs a realistic
share of them. A ``BulkDevice`` serves, for one unit ID:

* ``floats`` float32 process values in input registers from address 0 (two
  registers each, big-endian words), each ``center + noise × N(0, 1)``, drawn
  anew every ``period`` seconds: ``center`` is ``10 × (index mod 100)``;
* ``setpoints`` float32 setpoints in holding registers from address 0, which
  keep their value (``center`` of the same index) unless a client writes them.

Addresses beyond these read as exception 2. ``BulkPlant`` runs several such
devices in one event loop, each on its own port, and ``python -m
drivers.sim.bulk`` runs a ``BulkPlant`` and prints one line per device,
``modbus tcp://127.0.0.1:PORT unit 1``, once all listen; it stops when its
standard input closes (or after ``--seconds``). Benchmarks start it as a child
process so that serving it costs the measured process nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import struct
import sys
import threading
import time
from collections.abc import Sequence

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from drivers.sim.serving import Serving


def center(index: int) -> float:
    """The value process value (or setpoint) ``index`` varies around."""
    return 10.0 * (index % 100)


def to_registers(values: Sequence[float]) -> list[int]:
    """float32 values as big-endian registers, two per value."""
    data = struct.pack(f">{len(values)}f", *values)
    return list(struct.unpack(f">{2 * len(values)}H", data))


class BulkStore(SimCore):
    """The register image of one bulk device (unit ``unit``)."""

    def __init__(self, unit: int, floats: int, setpoints: int) -> None:
        super().__init__(SimDevice(id=unit, simdata=[SimData(0, datatype=DataType.REGISTERS)]))
        self.unit = unit
        self.input = to_registers([center(i) for i in range(floats)])
        self.holding = to_registers([center(i) for i in range(setpoints)])
        self.reads = 0

    def device_ids(self) -> list[int]:
        return [self.unit]

    def _table(self, device_id: int, func_code: int, address: int, count: int) -> list[int] | None:
        if device_id != self.unit:
            raise NoSuchIdException(f"unit {device_id} is not unit {self.unit}")
        table = self.input if func_code == 4 else self.holding if func_code in (3, 6, 16) else None
        if table is None or address < 0 or count < 1 or address + count > len(table):
            return None
        return table

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        table = self._table(device_id, func_code, address, count)
        if table is None:
            return ExcCodes.ILLEGAL_ADDRESS if func_code in (3, 4) else ExcCodes.ILLEGAL_FUNCTION
        self.reads += 1
        return table[address : address + count]

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes | None:
        table = self._table(device_id, func_code, address, len(values))
        if table is None or table is self.input:
            return ExcCodes.ILLEGAL_ADDRESS
        table[address : address + len(values)] = [int(v) for v in values]
        return None


class BulkDevice:
    """One bulk device on ``host:port``; ``refresh()`` draws new process values."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        unit: int = 1,
        *,
        floats: int = 1000,
        setpoints: int = 0,
        noise: float = 1.0,
        seed: int = 0,
    ) -> None:
        if not 0 <= floats <= 32768 or not 0 <= setpoints <= 32768:
            raise ValueError("floats and setpoints must be 0..32768 (two registers each)")
        self.host, self.port, self.unit = host, port, unit
        self.floats, self.noise = floats, noise
        self.store = BulkStore(unit, floats, setpoints)
        self._random = random.Random(seed)  # noqa: S311 - simulated noise, not security
        self._centers = [center(i) for i in range(floats)]
        self._server: ModbusTcpServer | None = None

    def refresh(self) -> None:
        """New process values: each its center plus fresh noise."""
        gauss, noise = self._random.gauss, self.noise
        self.store.input[:] = to_registers([c + noise * gauss(0.0, 1.0) for c in self._centers])

    async def start(self) -> None:
        server = ModbusTcpServer(
            SimDevice(id=self.unit, simdata=[SimData(0, datatype=DataType.REGISTERS)]),
            address=(self.host, self.port),
            ignore_missing_devices=True,
        )
        server.context = self.store
        await server.serve_forever(background=True)
        self._server = server
        for sock in getattr(server.transport, "sockets", None) or ():
            self.port = int(sock.getsockname()[1])
            break

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()  # type: ignore[no-untyped-call]


class BulkPlant(Serving):
    """``devices`` bulk devices on free ports, refreshed together every ``period`` seconds."""

    def __init__(
        self,
        devices: int,
        *,
        host: str = "127.0.0.1",
        floats: int = 1000,
        setpoints: int = 0,
        noise: float = 1.0,
        period: float = 1.0,
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.period = period
        self.devices = [
            BulkDevice(host, 0, 1, floats=floats, setpoints=setpoints, noise=noise, seed=d)
            for d in range(devices)
        ]
        self.refreshes = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for device in self.devices:
            device.refresh()
            await device.start()
        self._task = asyncio.create_task(self._run(), name="bulk-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for device in self.devices:
            await device.stop()

    async def _run(self) -> None:
        due = time.monotonic()
        while True:
            due += self.period
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            for device in self.devices:
                device.refresh()
            self.refreshes += 1


async def _main(args: argparse.Namespace) -> None:
    plant = BulkPlant(
        args.devices,
        host=args.host,
        floats=args.floats,
        setpoints=args.setpoints,
        noise=args.noise,
        period=args.period,
    )
    async with plant:
        for device in plant.devices:
            print(f"modbus tcp://{device.host}:{device.port} unit {device.unit}", flush=True)
        await asyncio.wait_for(_stdin_closed(), args.seconds)


async def _stdin_closed() -> None:
    """Returns once standard input is closed (read in a daemon thread, which never blocks exit)."""
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def read() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    await closed.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m drivers.sim.bulk", description=__doc__)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--floats", type=int, default=1000, help="process values per device")
    parser.add_argument("--setpoints", type=int, default=0, help="setpoints per device")
    parser.add_argument("--noise", type=float, default=1.0, help="std. deviation of values")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between changes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt, TimeoutError):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
