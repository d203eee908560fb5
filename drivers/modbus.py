"""Modbus TCP (or RTU) device driver on the pymodbus 3.x async client.

pymodbus reports trouble on two channels, and they mean different things:
an exception (refused, closed, no answer) means the link is gone, so every
point of the device turns BAD, the link state goes DOWN and the driver
reconnects with capped exponential backoff; a reply with ``isError()`` (or
fewer values than asked) is the device's answer about some addresses, so only
the points of that request turn BAD and the other requests still count.

Reads are planned into as few requests as the protocol allows (see
``plan_reads``) because each request is a full network round trip. Address
syntax, points and read planning live in ``drivers.modbus_points`` (no
pymodbus there, so the configuration checker can use them) and are
re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from drivers.base import (
    DeviceRefused,
    DriverError,
    LinkCallback,
    LinkDown,
    LinkState,
    PointError,
    Quality,
    Sample,
    Value,
    WriteNotConfirmed,
    cancel_and_wait,
    utc_now,
)
from drivers.codec import decode, encode, pack_registers
from drivers.modbus_points import BIT_TABLES as BIT_TABLES
from drivers.modbus_points import PROTOCOL_LIMIT as PROTOCOL_LIMIT
from drivers.modbus_points import TABLES as TABLES
from drivers.modbus_points import ModbusPoint as ModbusPoint
from drivers.modbus_points import ReadBlock as ReadBlock
from drivers.modbus_points import Table as Table
from drivers.modbus_points import WriteFunction as WriteFunction
from drivers.modbus_points import parse_address as parse_address
from drivers.modbus_points import plan_reads as plan_reads

log = logging.getLogger(__name__)

EXCEPTION_NAMES: dict[int, str] = {
    1: "ILLEGAL FUNCTION",
    2: "ILLEGAL DATA ADDRESS",
    3: "ILLEGAL DATA VALUE",
    4: "SERVER DEVICE FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER DEVICE BUSY",
    7: "NEGATIVE ACKNOWLEDGE",
    8: "MEMORY PARITY ERROR",
    10: "GATEWAY PATH UNAVAILABLE",
    11: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}


def exception_text(code: int) -> str:
    """``Modbus exception 2 (ILLEGAL DATA ADDRESS)``: what operators and QA will read."""
    return f"Modbus exception {code} ({EXCEPTION_NAMES.get(code, 'UNKNOWN')})"


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """``initial``, doubling each time, never above ``maximum``."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay = min(delay * 2, maximum)


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Modbus RTU over a serial line (needs pyserial). ``port`` may be ``socket://host:port``."""

    port: str
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


@dataclass(frozen=True, slots=True)
class ModbusSettings:
    """How to reach one device and how to talk to it.

    ``framer="rtu"`` sends RTU frames over TCP, as some serial gateways expect.
    ``retries`` defaults to 0 so that a dead device is noticed within one
    ``timeout`` rather than several.
    """

    host: str = "127.0.0.1"
    port: int = 502
    device_id: int = 1
    timeout: float = 1.0
    retries: int = 0
    max_gap: int = 10
    max_bit_gap: int = 64
    max_registers: int = 125
    max_bits: int = 2000
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    framer: Literal["socket", "rtu"] = "socket"
    serial: SerialSettings | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.device_id <= 255:
            raise ValueError(f"device_id {self.device_id} is outside 0..255")
        if not 1 <= self.max_registers <= 125 or not 1 <= self.max_bits <= 2000:
            raise ValueError("max_registers must be 1..125 and max_bits 1..2000")
        if self.timeout <= 0 or self.reconnect_initial <= 0:
            raise ValueError("timeout and reconnect_initial must be positive")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max cannot be below reconnect_initial")

    @property
    def where(self) -> str:
        return self.serial.port if self.serial else f"{self.host}:{self.port}"


_LINK_ERRORS = (ModbusException, OSError, asyncio.TimeoutError)
_READ = {
    "coil": "read_coils",
    "discrete_input": "read_discrete_inputs",
    "holding_register": "read_holding_registers",
    "input_register": "read_input_registers",
}

Sleep = Callable[[float], Awaitable[None]]


class ModbusDriver:
    """A connection to one Modbus device (TCP, or RTU on a serial line)."""

    def __init__(
        self,
        name: str,
        points: Sequence[ModbusPoint],
        settings: ModbusSettings | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.settings = settings or ModbusSettings()
        self._points: dict[str, ModbusPoint] = {}
        for p in points:
            if p.name in self._points:
                raise ValueError(f"device {name!r}: point {p.name!r} is declared twice")
            self._points[p.name] = p
        self._sleep = sleep
        self._state = LinkState.CONNECTING
        self._reason = "not started"
        self._callbacks: list[LinkCallback] = []
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._plans: dict[tuple[str, ...], list[ReadBlock]] = {}
        self._splits: dict[ReadBlock, list[ReadBlock]] = {}
        self._last: dict[str, Sample] = {}
        everything = self._plan(tuple(self._points))
        self._probe = min(everything, key=lambda b: b.count) if everything else None

    # ------------------------------------------------------------ Driver protocol

    @property
    def link_state(self) -> LinkState:
        return self._state

    @property
    def link_reason(self) -> str:
        """Why the link is in its state (``link down: ...`` while DOWN)."""
        return self._reason

    @property
    def points(self) -> dict[str, ModbusPoint]:
        return dict(self._points)

    def on_link_change(self, callback: LinkCallback) -> None:
        self._callbacks.append(callback)

    def last_samples(self) -> dict[str, Sample]:
        """The latest sample of every point read so far (all BAD while the link is down)."""
        return dict(self._last)

    async def start(self) -> None:
        reason = await self._connect()
        if reason is None:
            self._set_state(LinkState.UP, f"connected to {self.settings.where}")
        else:
            self._went_down(reason)

    async def stop(self) -> None:
        task, self._reconnect = self._reconnect, None
        if task is not None:
            await cancel_and_wait([task])
        self._close()
        self._state, self._reason = LinkState.DOWN, "stopped"

    async def read(self, points: Sequence[str]) -> list[Sample]:
        wanted = tuple(points)
        if wanted not in self._plans:
            for n in wanted:
                self._point(n)
        client = self._client
        if self._state is not LinkState.UP or client is None:
            return [self._bad(n, self._reason) for n in wanted]
        got: dict[str, Sample] = {}
        try:
            for block in self._plan(wanted):
                got.update(await self._read_block(client, block))
        except _LINK_ERRORS as exc:
            reason = self._link_lost(exc, client)
            return [self._bad(n, reason) for n in wanted]
        self._last.update(got)
        return [got[n] for n in wanted]

    async def write(self, point: str, value: Value) -> Sample:
        p = self._point(point)
        if not p.writable:
            raise PointError(f"{self.name}.{point} is not writable")
        if isinstance(value, float) and not math.isfinite(value):
            raise PointError(f"{self.name}.{point}: {value!r} cannot be written")
        try:
            payload = encode(p.fmt, value)
            expected = decode(p.fmt, payload)
        except ValueError as exc:
            raise PointError(f"{self.name}.{point}: {exc}") from exc
        client = self._client
        if self._state is not LinkState.UP or client is None:
            raise LinkDown(f"{self.name}.{point}: {self._reason}")
        unit = self.settings.device_id
        try:
            if p.table == "coil" and p.write_function == "single":
                reply = await client.write_coil(p.address, bool(payload[0]), device_id=unit)
            elif p.table == "coil":
                reply = await client.write_coils(p.address, [bool(payload[0])], device_id=unit)
            elif p.write_function == "single":
                reply = await client.write_register(p.address, payload[0], device_id=unit)
            else:
                reply = await client.write_registers(p.address, payload, device_id=unit)
        except _LINK_ERRORS as exc:
            raise LinkDown(f"{self.name}.{point}: {self._link_lost(exc, client)}") from exc
        if reply.isError():
            raise DeviceRefused(f"{self.name}.{point}: {exception_text(reply.exception_code)}")
        back = (await self.read([point]))[0]
        if not back.good:
            raise WriteNotConfirmed(f"{self.name}.{point}: read-back failed: {back.reason}")
        if not _same(expected, back.value):
            raise WriteNotConfirmed(
                f"{self.name}.{point}: wrote {expected!r} but read back {back.value!r}"
            )
        return back

    # ------------------------------------------------------------ reading

    def _point(self, name: str) -> ModbusPoint:
        try:
            return self._points[name]
        except KeyError:
            raise PointError(f"device {self.name!r} has no point {name!r}") from None

    def _plan(self, names: tuple[str, ...]) -> list[ReadBlock]:
        plan = self._plans.get(names)
        if plan is None:
            s = self.settings
            plan = plan_reads(
                (self._points[n] for n in names),
                max_gap=s.max_gap,
                max_bit_gap=s.max_bit_gap,
                max_registers=s.max_registers,
                max_bits=s.max_bits,
            )
            plan = self._expand(plan)
            if len(self._plans) > 256:
                self._plans.clear()
            self._plans[names] = plan
        return plan

    def _expand(self, blocks: list[ReadBlock]) -> list[ReadBlock]:
        out: list[ReadBlock] = []
        for block in blocks:
            parts = self._splits.get(block)
            out.extend(self._expand(parts) if parts else [block])
        return out

    async def _read_block(
        self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, block: ReadBlock
    ) -> dict[str, Sample]:
        """Read one block; split it for good if the device refuses an address in it.

        Joining points reads the addresses between them too, and a device may
        refuse one of those (exception 2). The block is then read as runs of
        adjacent points, or point by point, so that only the points the device
        really refuses turn BAD; the split is remembered for later reads.
        """
        reply = await self._request(client, block)
        if reply.isError() and reply.exception_code == 2 and len(block.points) > 1:
            s = self.settings
            parts = plan_reads(
                block.points,
                max_gap=0,
                max_bit_gap=0,
                max_registers=s.max_registers,
                max_bits=s.max_bits,
            )
            if len(parts) == 1:
                parts = [ReadBlock(block.table, p.address, p.count, (p,)) for p in block.points]
            self._splits[block] = parts
            self._plans.clear()
            got: dict[str, Sample] = {}
            for part in parts:
                got.update(await self._read_block(client, part))
            return got
        return self._samples(block, reply)

    async def _request(
        self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, block: ReadBlock
    ) -> ModbusPDU:
        call: Callable[..., Awaitable[ModbusPDU]] = getattr(client, _READ[block.table])
        return await call(block.address, count=block.count, device_id=self.settings.device_id)

    def _samples(self, block: ReadBlock, reply: ModbusPDU) -> dict[str, Sample]:
        now = utc_now()
        reason = ""
        if reply.isError():
            reason = exception_text(reply.exception_code)
        elif block.table in BIT_TABLES:
            if len(reply.bits) < block.count:
                reason = f"short reply: asked {block.count} bits, got {len(reply.bits)}"
        elif len(reply.registers) != block.count:
            kind = "short" if len(reply.registers) < block.count else "long"
            reason = f"{kind} reply: asked {block.count} registers, got {len(reply.registers)}"
        if reason:
            return {
                p.name: Sample(p.name, None, Quality.BAD, reason, None, now) for p in block.points
            }
        good = Quality.GOOD
        if block.table in BIT_TABLES:
            bits = reply.bits
            return {n: Sample(n, bool(bits[i]), good, "", None, now) for n, _, i in block.layout}
        data = pack_registers(reply.registers)
        out: dict[str, Sample] = {}
        if block.unpacker is not None:
            values = block.unpacker.unpack_from(data)
            named = zip(block.plain, values, strict=True)
            out = {n: Sample(n, v, good, "", None, now) for n, v in named}
            if block.plain_floats and not math.isfinite(sum(values)):
                self._flag_non_finite(out, block.plain_floats, now)
        for n, unpack, i in block.layout:
            out[n] = Sample(n, unpack(data, i), good, "", None, now)
        if block.layout_floats:
            self._flag_non_finite(out, block.layout_floats, now)
        return out

    @staticmethod
    def _flag_non_finite(out: dict[str, Sample], names: Sequence[str], now: datetime) -> None:
        """NaN or infinity from a device is no measurement: such a sample is BAD."""
        for name in names:
            value = out[name].value
            if isinstance(value, float) and not math.isfinite(value):
                reason = f"device value is not a finite number ({value})"
                out[name] = Sample(name, value, Quality.BAD, reason, None, now)

    def _bad(self, name: str, reason: str) -> Sample:
        return Sample(name, None, Quality.BAD, reason)

    # ------------------------------------------------------------ the link

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        s = self.settings
        if s.serial is not None:
            try:
                return AsyncModbusSerialClient(
                    s.serial.port,
                    framer=FramerType.RTU,
                    baudrate=s.serial.baudrate,
                    bytesize=s.serial.bytesize,
                    parity=s.serial.parity,
                    stopbits=s.serial.stopbits,
                    timeout=s.timeout,
                    retries=s.retries,
                    reconnect_delay=0,
                )
            except RuntimeError as exc:
                raise DriverError(
                    f"device {self.name!r}: Modbus RTU needs pyserial: {exc}"
                ) from exc
        framer = FramerType.RTU if s.framer == "rtu" else FramerType.SOCKET
        return AsyncModbusTcpClient(
            s.host,
            port=s.port,
            framer=framer,
            timeout=s.timeout,
            retries=s.retries,
            reconnect_delay=0,
        )

    async def _connect(self) -> str | None:
        """Connect and prove the device answers; None when up, else why not."""
        client = self._make_client()
        try:
            if not await client.connect():
                client.close()
                return f"link down: cannot connect to {self.settings.where}"
            if self._probe is not None:
                await self._request(client, self._probe)
        except _LINK_ERRORS as exc:
            client.close()
            return f"link down: {self._describe(exc)}"
        self._close()
        self._client = client
        return None

    def _describe(self, exc: BaseException) -> str:
        s = self.settings
        if isinstance(exc, ModbusIOException | asyncio.TimeoutError) and (
            "No response" in str(exc) or isinstance(exc, asyncio.TimeoutError)
        ):
            return f"no answer from unit {s.device_id} at {s.where} within {s.timeout:g} s"
        if isinstance(exc, ConnectionException):
            return f"connection to {s.where} lost"
        if isinstance(exc, OSError):
            return f"{s.where}: {exc.strerror or exc}"
        return f"{s.where}: {exc}"

    def _link_lost(
        self, exc: BaseException, client: AsyncModbusTcpClient | AsyncModbusSerialClient
    ) -> str:
        """Take the link down, unless ``client`` is a connection already replaced."""
        if client is not self._client or self._state is LinkState.DOWN:
            return f"link down: {self._describe(exc)}"
        self._close()
        self._went_down(f"link down: {self._describe(exc)}")
        return self._reason

    def _went_down(self, reason: str) -> None:
        for name in self._points:
            self._last[name] = self._bad(name, reason)
        self._set_state(LinkState.DOWN, reason)
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.create_task(
                self._reconnect_loop(), name=f"modbus-reconnect-{self.name}"
            )

    async def _reconnect_loop(self) -> None:
        s = self.settings
        for delay in backoff_delays(s.reconnect_initial, s.reconnect_max):
            await self._sleep(delay)
            reason = await self._connect()
            if reason is None:
                self._reconnect = None
                self._set_state(LinkState.UP, f"reconnected to {s.where}")
                return
            self._reason = reason
            for name in self._points:
                self._last[name] = self._bad(name, reason)

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _set_state(self, state: LinkState, reason: str) -> None:
        changed = state is not self._state
        self._state, self._reason = state, reason
        if not changed:
            return
        log.info("device %s link %s: %s", self.name, state.value, reason)
        for callback in list(self._callbacks):
            try:
                callback(state, reason)
            except Exception:
                log.exception("link callback of device %s failed", self.name)


def _same(expected: object, actual: object) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return expected == actual or (math.isnan(expected) and math.isnan(actual))
    return expected == actual
