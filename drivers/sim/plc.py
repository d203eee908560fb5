"""A simulated bioreactor skid PLC that answers Modbus TCP on a real socket.

The demo plant and the driver tests need a device that behaves like one:
process values that follow their setpoints with first-order lags, outputs
that switch, faults that can be injected, refusals for bad addresses and
out-of-range setpoints, silence towards unit IDs it does not own, and (on
request) a faulty reply that holds fewer registers than were asked for.

The register map lives in ``REGISTER_MAP``; the simulator serves it and
``register_map_markdown()`` renders the table in docs/sim-plant-modbus.md.

pymodbus 3.16 copies a ``ModbusDeviceContext`` into its own store when the
server is built and offers no hook to shorten a reply, so the server is given
``PlcStore`` (a ``SimCore`` that serves this model's register image) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from drivers.codec import DType, Format, decode, encode, register_count
from drivers.sim.drop_camera import DropCamera
from drivers.sim.serving import Serving

Table = Literal["coil", "discrete_input", "holding_register", "input_register"]
BIT_TABLES: tuple[Table, ...] = ("coil", "discrete_input")

TABLE_SIZE: dict[Table, int] = {
    "coil": 32,
    "discrete_input": 32,
    "holding_register": 500,
    "input_register": 256,
}
"""Addresses below the size read and write as plain memory; above it, exception 2."""

_FC_TABLE: dict[int, Table] = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete_input",
    3: "holding_register",
    6: "holding_register",
    16: "holding_register",
    22: "holding_register",
    23: "holding_register",
    4: "input_register",
}


@dataclass(frozen=True, slots=True)
class MapEntry:
    """One named item of the PLC's Modbus interface."""

    name: str
    table: Table
    address: int
    dtype: DType
    units: str
    writable: bool
    meaning: str
    length: int = 0
    limits: tuple[float, float] | None = None
    initial: float | str = 0

    @property
    def count(self) -> int:
        return 1 if self.table in BIT_TABLES else register_count(self.dtype, self.length)

    @property
    def fmt(self) -> Format:
        return Format(self.dtype, length=self.length)


FAULTS: tuple[str, ...] = (
    "HEATER_FAULT",
    "PH_PROBE_FAULT",
    "DO_PROBE_FAULT",
    "AGITATOR_TRIP",
    "PUMP_FAULT",
    "ESTOP",
)
STAGES: tuple[str, ...] = ("IDLE", "PREPARE", "INOCULATE", "GROW", "HARVEST", "CLEAN")
AMBIENT_C = 20.0


def _out(name: str, address: int, meaning: str) -> MapEntry:
    return MapEntry(name, "coil", address, "bool", "", True, meaning)


def _di(name: str, address: int, meaning: str) -> MapEntry:
    return MapEntry(name, "discrete_input", address, "bool", "", False, meaning)


def _pv(name: str, address: int, units: str, meaning: str, initial: float = 0.0) -> MapEntry:
    return MapEntry(
        name, "input_register", address, "float32", units, False, meaning, initial=initial
    )


def _sp(
    name: str, address: int, units: str, meaning: str, limits: tuple[float, float], initial: float
) -> MapEntry:
    return MapEntry(
        name,
        "holding_register",
        address,
        "float32",
        units,
        True,
        meaning,
        limits=limits,
        initial=initial,
    )


REGISTER_MAP: tuple[MapEntry, ...] = (
    _out("FEED_PUMP", 0, "Feed pump run command"),
    _out("HARVEST_VALVE", 1, "Harvest valve open command"),
    _out("AGITATOR_RUN", 2, "Agitator run command"),
    _out(
        "CAMERA_TRIGGER",
        8,
        "Camera trigger: set it to take a picture; the camera writes a "
        "PNG into its drop folder, then resets the coil (stays set without a drop folder)",
    ),
    _di("HEATER_FAULT", 0, "Jacket heater fault; temperature drifts to ambient (20 °C)"),
    _di("PH_PROBE_FAULT", 1, "pH probe fault; PH_PV freezes at its last value"),
    _di("DO_PROBE_FAULT", 2, "DO probe fault; DO_PV freezes at its last value"),
    _di("AGITATOR_TRIP", 3, "Agitator motor tripped; agitation runs down to 0 rpm"),
    _di("PUMP_FAULT", 4, "Feed pump fault; feed flow stops"),
    _di("ESTOP", 5, "Emergency stop; pump, valve and agitator are held off"),
    _di("PUMP_RUNNING", 8, "Feed pump running (feedback)"),
    _di("VALVE_OPEN", 9, "Harvest valve open (feedback)"),
    _pv("TEMP_PV", 0, "°C", "Vessel temperature", AMBIENT_C),
    _pv("PH_PV", 2, "pH", "Culture pH", 7.2),
    _pv("DO_PV", 4, "%", "Dissolved oxygen, % of air saturation", 100.0),
    _pv("AGIT_PV", 6, "rpm", "Agitator speed"),
    _pv("FEED_FLOW_PV", 8, "L/h", "Feed flow"),
    _pv("VOLUME_PV", 10, "L", "Working volume (feed in, harvest out at 20 L/h)", 50.0),
    MapEntry("UPTIME", "input_register", 12, "uint32", "s", False, "Seconds since PLC start"),
    MapEntry(
        "FAULT_WORD",
        "input_register",
        14,
        "uint16",
        "",
        False,
        "Active faults, bit n = discrete input n",
    ),
    _sp("TEMP_SP", 0, "°C", "Temperature setpoint", (4.0, 45.0), 37.0),
    _sp("PH_SP", 2, "pH", "pH setpoint", (5.5, 8.5), 7.0),
    _sp("DO_SP", 4, "%", "Dissolved oxygen setpoint", (0.0, 100.0), 40.0),
    _sp("AGIT_SP", 6, "rpm", "Agitator speed setpoint", (0.0, 600.0), 150.0),
    _sp("FEED_SP", 8, "L/h", "Feed flow setpoint", (0.0, 50.0), 5.0),
    MapEntry(
        "STAGE",
        "holding_register",
        10,
        "uint16",
        "",
        True,
        "Batch stage: " + ", ".join(f"{i} {s}" for i, s in enumerate(STAGES)),
        limits=(0, len(STAGES) - 1),
    ),
    MapEntry(
        "BATCH_ID",
        "holding_register",
        12,
        "string",
        "",
        True,
        "Batch identifier, UTF-8, NUL padded (16 bytes)",
        length=8,
        initial="",
    ),
)
"""The PLC's Modbus interface: every value is big-endian (byte and word order)."""

SPARE = {"holding_register": (100, 499), "input_register": (100, 255)}
"""Free memory, readable and writable, for commissioning tests and benchmarks."""

ENTRIES: dict[str, MapEntry] = {e.name: e for e in REGISTER_MAP}

DEFAULT_TIME_CONSTANTS: dict[str, float] = {
    "TEMP": 60.0,
    "PH": 30.0,
    "DO": 20.0,
    "AGIT": 3.0,
    "FEED": 2.0,
}
HARVEST_FLOW_L_PER_H = 20.0


def register_map_markdown() -> str:
    """The register map as the Markdown table in docs/sim-plant-modbus.md."""
    lines = [
        "| Name | Table | Address | Type | Units | Writable | Meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in REGISTER_MAP:
        dtype = f"string[{e.length}]" if e.dtype == "string" else e.dtype
        span = f"{e.address}" if e.count == 1 else f"{e.address}–{e.address + e.count - 1}"
        meaning = e.meaning
        if e.limits is not None and e.dtype != "uint16":
            meaning += f"; accepted {e.limits[0]:g} to {e.limits[1]:g}"
        lines.append(
            f"| {e.name} | {e.table} | {span} | {dtype} | {e.units} | "
            f"{'yes' if e.writable else 'no'} | {meaning} |"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ShortReply:
    """Answer reads that touch ``first..last`` of ``table`` with ``drop`` values fewer."""

    table: Table
    first: int
    last: int
    drop: int


class PlcStore(SimCore):
    """The register image the server answers from, owned by one unit ID.

    Requests for another unit raise ``NoSuchIdException``: pymodbus then stays
    silent (``ignore_missing_devices``) or answers exception 11, as a serial
    device or a gateway would.
    """

    def __init__(self, unit: int) -> None:
        super().__init__(SimDevice(id=unit, simdata=[SimData(0, datatype=DataType.REGISTERS)]))
        self.unit = unit
        self.bits: dict[Table, list[bool]] = {t: [False] * TABLE_SIZE[t] for t in BIT_TABLES}
        self.regs: dict[Table, list[int]] = {
            t: [0] * TABLE_SIZE[t] for t in ("holding_register", "input_register")
        }
        self.short_reply: ShortReply | None = None
        self.writes_open: asyncio.Event | None = None
        """When set up and not set, write requests wait for it (a device slow to answer)."""
        self.on_write: Callable[[], None] | None = None
        self.journal: deque[tuple[int, int, int]] = deque(maxlen=1000)
        """(function code, address, count) of recent requests, for tests to inspect."""

    def device_ids(self) -> list[int]:
        return [self.unit]

    def _check(self, device_id: int, func_code: int, address: int, count: int) -> Table | ExcCodes:
        if device_id != self.unit:
            raise NoSuchIdException(f"unit {device_id} is not unit {self.unit}")
        table = _FC_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if address < 0 or count < 1 or address + count > TABLE_SIZE[table]:
            return ExcCodes.ILLEGAL_ADDRESS
        return table

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        if func_code in (1, 2, 3, 4):
            self.journal.append((func_code, address, count))
        table = self._check(device_id, func_code, address, count)
        if isinstance(table, ExcCodes):
            return table
        short = self.short_reply
        if (
            short is not None
            and func_code not in (5, 6, 15, 16)
            and short.table == table
            and address <= short.last
            and address + count - 1 >= short.first
        ):
            count = max(0, count - short.drop)
        if table in BIT_TABLES:
            return self.bits[table][address : address + count]
        return self.regs[table][address : address + count]

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes | None:
        self.journal.append((func_code, address, len(values)))
        if self.writes_open is not None:
            await self.writes_open.wait()
        table = self._check(device_id, func_code, address, len(values))
        if isinstance(table, ExcCodes):
            return table
        if table in BIT_TABLES:
            self.bits[table][address : address + len(values)] = [bool(v) for v in values]
            self._written()
            return None
        candidate = list(self.regs[table])
        candidate[address : address + len(values)] = [int(v) for v in values]
        for entry in REGISTER_MAP:
            if entry.table != table or entry.limits is None:
                continue
            if entry.address + entry.count <= address or entry.address >= address + len(values):
                continue
            value = decode(entry.fmt, candidate[entry.address : entry.address + entry.count])
            assert isinstance(value, int | float)
            low, high = entry.limits
            if not low <= value <= high:
                return ExcCodes.ILLEGAL_VALUE
        self.regs[table] = candidate
        self._written()
        return None

    def _written(self) -> None:
        if self.on_write is not None:
            self.on_write()


class BioreactorPLC(Serving):
    """A bioreactor skid: temperature, pH, DO, agitation, feed and harvest.

    ``step(dt)`` advances the model by ``dt`` simulated seconds, so tests are
    deterministic; ``realtime=True`` advances it from a background task for
    demos. ``noise`` is the standard deviation of measurement noise on the
    analog process values (0 keeps tests exact).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        unit: int = 1,
        *,
        time_constants: Mapping[str, float] | None = None,
        noise: float = 0.0,
        seed: int = 0,
        realtime: bool = False,
        tick: float = 0.1,
        unknown_unit: Literal["ignore", "exception"] = "ignore",
        framer: Literal["socket", "rtu"] = "socket",
        drop_folder: Path | None = None,
        camera_delay: float = 0.05,
    ) -> None:
        self.host = host
        self.port = port
        self.unit = unit
        self.tau = {**DEFAULT_TIME_CONSTANTS, **(time_constants or {})}
        self.noise = noise
        self.realtime = realtime
        self.tick = tick
        self.unknown_unit = unknown_unit
        self.framer = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
        self.store = PlcStore(unit)
        self.store.on_write = self._after_write
        self.camera = DropCamera(drop_folder, camera_delay) if drop_folder is not None else None
        self.sim_time = 0.0
        self._random = random.Random(seed)  # noqa: S311 - measurement noise, not security
        self._true: dict[str, float] = {}
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None
        for entry in REGISTER_MAP:
            if entry.table == "discrete_input":
                continue
            self.set(entry.name, entry.initial)
            if entry.table == "input_register" and entry.dtype == "float32":
                self._true[entry.name] = float(entry.initial)
        self._publish()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on ``host:port``; ``port`` then holds the port actually bound."""
        server = ModbusTcpServer(
            SimDevice(id=self.unit, simdata=[SimData(0, datatype=DataType.REGISTERS)]),
            address=(self.host, self.port),
            framer=self.framer,
            ignore_missing_devices=self.unknown_unit == "ignore",
        )
        server.context = self.store
        await server.serve_forever(background=True)
        self._server = server
        sockets: Sequence[object] = getattr(server.transport, "sockets", None) or ()
        for sock in sockets:
            name = getattr(sock, "getsockname", None)
            if name is not None:
                self.port = int(name()[1])
                break
        if self.realtime:
            self._task = asyncio.create_task(self._run(), name=f"plc-{self.port}")

    async def stop(self) -> None:
        """Stop the model and close the listener and every client connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            self.step(now - last)
            last = now

    # ------------------------------------------------------------ test and demo hooks

    def get(self, name: str) -> bool | int | float | str:
        """The value the PLC currently serves for ``name`` (engineering units)."""
        e = ENTRIES[name]
        if e.table in BIT_TABLES:
            return self.store.bits[e.table][e.address]
        return decode(e.fmt, self.store.regs[e.table][e.address : e.address + e.count])

    def set(self, name: str, value: bool | float | str) -> None:
        """Set what the PLC serves for ``name``, as if the process or program had."""
        e = ENTRIES[name]
        if e.table in BIT_TABLES:
            self.store.bits[e.table][e.address] = bool(value)
        else:
            regs = encode(e.fmt, value)
            self.store.regs[e.table][e.address : e.address + e.count] = regs
        if e.name in self._true:
            self._true[e.name] = float(value)

    def set_raw(self, table: Table, address: int, values: Sequence[int] | Sequence[bool]) -> None:
        """Put raw registers or bits into any table, e.g. the spare areas."""
        if table in BIT_TABLES:
            self.store.bits[table][address : address + len(values)] = [bool(v) for v in values]
        else:
            self.store.regs[table][address : address + len(values)] = [int(v) for v in values]

    def raw(self, table: Table, address: int, count: int) -> list[int] | list[bool]:
        if table in BIT_TABLES:
            return self.store.bits[table][address : address + count]
        return self.store.regs[table][address : address + count]

    def inject_fault(self, name: str, active: bool = True) -> None:
        """Raise (or clear) one of ``FAULTS``; the model reacts at the next step."""
        if name not in FAULTS:
            raise KeyError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        self.set(name, active)
        self._after_write()

    def clear_fault(self, name: str) -> None:
        self.inject_fault(name, False)

    def short_reply(self, table: Table, first: int, last: int, drop: int = 4) -> None:
        """Answer reads touching ``first..last`` with ``drop`` registers or bits too few."""
        self.store.short_reply = ShortReply(table, first, last, drop)

    def clear_short_reply(self) -> None:
        self.store.short_reply = None

    def hold_writes(self) -> None:
        """Take write requests but answer none until ``answer_writes`` (a busy device)."""
        self.store.writes_open = asyncio.Event()

    def answer_writes(self) -> None:
        if self.store.writes_open is not None:
            self.store.writes_open.set()
        self.store.writes_open = None

    # ------------------------------------------------------------ the process

    def _fault(self, name: str) -> bool:
        return bool(self.store.bits["discrete_input"][ENTRIES[name].address])

    def _lag(self, name: str, target: float, tau: float, dt: float) -> float:
        value = self._true[name]
        value += (target - value) * (1.0 - math.exp(-dt / tau))
        self._true[name] = value
        return value

    def _interlocks(self) -> None:
        """The PLC program's interlocks, applied after every write as in a PLC scan.

        With ESTOP active the outputs are held off: a write that switches one
        on is accepted by the protocol and then undone, which is what a
        read-back must catch.
        """
        if self._fault("ESTOP"):
            for coil in ("FEED_PUMP", "HARVEST_VALVE", "AGITATOR_RUN"):
                self.set(coil, False)

    def _after_write(self) -> None:
        self._interlocks()
        self._publish_status()
        self._camera_trigger()

    def _camera_trigger(self) -> None:
        """A set CAMERA_TRIGGER takes one picture of the process values, then resets itself."""
        if self.camera is not None and self.get("CAMERA_TRIGGER"):
            self.camera.take(
                lambda: {**self._true, "sim_time": self.sim_time},
                lambda: self.set("CAMERA_TRIGGER", False),
            )

    def step(self, dt: float) -> None:
        """Advance the process by ``dt`` seconds of simulated time."""
        if dt <= 0:
            return
        self.sim_time += dt
        self._interlocks()
        heater_ok = not self._fault("HEATER_FAULT")
        temp_target = float(self.get("TEMP_SP")) if heater_ok else AMBIENT_C
        self._lag("TEMP_PV", temp_target, self.tau["TEMP"], dt)

        agit_on = bool(self.get("AGITATOR_RUN")) and not self._fault("AGITATOR_TRIP")
        agit = self._lag(
            "AGIT_PV", float(self.get("AGIT_SP")) if agit_on else 0.0, self.tau["AGIT"], dt
        )
        transfer = min(1.0, max(0.0, agit / 50.0))
        if not self._fault("DO_PROBE_FAULT"):
            self._lag("DO_PV", float(self.get("DO_SP")) * transfer, self.tau["DO"], dt)
        if not self._fault("PH_PROBE_FAULT"):
            self._lag("PH_PV", float(self.get("PH_SP")), self.tau["PH"], dt)

        pumping = bool(self.get("FEED_PUMP")) and not self._fault("PUMP_FAULT")
        feed = self._lag(
            "FEED_FLOW_PV", float(self.get("FEED_SP")) if pumping else 0.0, self.tau["FEED"], dt
        )
        harvest = HARVEST_FLOW_L_PER_H if self.get("HARVEST_VALVE") else 0.0
        volume = self._true["VOLUME_PV"] + (feed - harvest) * dt / 3600.0
        self._true["VOLUME_PV"] = max(0.0, volume)
        self._publish(pumping=pumping)

    def _publish(self, pumping: bool | None = None) -> None:
        """Copy the model's state into the registers the server answers from."""
        for name, value in self._true.items():
            e = ENTRIES[name]
            frozen = (name == "PH_PV" and self._fault("PH_PROBE_FAULT")) or (
                name == "DO_PV" and self._fault("DO_PROBE_FAULT")
            )
            if frozen:
                continue
            shown = value + (self._random.gauss(0.0, self.noise) if self.noise else 0.0)
            self.store.regs[e.table][e.address : e.address + e.count] = encode(e.fmt, shown)
        self._publish_status(pumping)

    def _publish_status(self, pumping: bool | None = None) -> None:
        """Feedback inputs and status words, which follow outputs and faults at once."""
        if pumping is None:
            pumping = bool(self.get("FEED_PUMP")) and not self._fault("PUMP_FAULT")
        self.set("PUMP_RUNNING", pumping)
        self.set("VALVE_OPEN", bool(self.get("HARVEST_VALVE")))
        word = sum(1 << ENTRIES[f].address for f in FAULTS if self._fault(f))
        self.set("FAULT_WORD", word)
        self.set("UPTIME", int(self.sim_time) & 0xFFFFFFFF)


async def serve(host: str = "127.0.0.1", port: int = 5020, unit: int = 1) -> None:
    """Run the simulated PLC in real time until cancelled (for demos)."""
    async with BioreactorPLC(host, port, unit, noise=0.02, realtime=True):
        await asyncio.Event().wait()
