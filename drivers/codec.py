"""Register ⇄ value conversion for 16-bit register devices (Modbus and the like).

Devices disagree on how a 32- or 64-bit value is laid over 16-bit registers:
the bytes inside a word and the words inside a value can each be big- or
little-endian (ABCD, CDAB, BADC, DCBA for 32 bits). Getting this wrong shows
a plausible but wrong number, so every layout is explicit in a ``Format``.

Engineering value = raw × scale + offset. Encoding reverses it, rounds to the
nearest integer for integer types and refuses values the type cannot hold,
because a silently clipped setpoint is worse than a refused one.

The codec is pure and uses only the standard library so that the HMI core,
the simulator and the tests can share it. Scaled 64-bit integers are exact
only while the raw value stays below 2**53 (the precision of a float).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

DType = Literal[
    "bool",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
    "string",
]
Order = Literal["big", "little"]

DTYPES: tuple[DType, ...] = get_args(DType)
ORDERS: tuple[Order, ...] = get_args(Order)

_STRUCT: dict[str, str] = {
    "bool": ">H",
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "int64": ">q",
    "uint64": ">Q",
    "float32": ">f",
    "float64": ">d",
}
_INT_RANGE: dict[str, tuple[int, int]] = {
    "bool": (0, 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
FLOAT_TYPES: frozenset[str] = frozenset({"float32", "float64"})
INTEGER_TYPES: frozenset[str] = frozenset(_INT_RANGE) - {"bool"}


def register_count(dtype: DType, length: int = 0) -> int:
    """How many 16-bit registers one value of ``dtype`` occupies.

    ``length`` is the number of registers of a string (two bytes each) and is
    ignored for the other types.
    """
    if dtype == "string":
        if length < 1:
            raise ValueError("a string needs a length of at least 1 register")
        return length
    if dtype not in _STRUCT:
        raise ValueError(f"unknown data type {dtype!r}; expected one of {', '.join(DTYPES)}")
    return struct.calcsize(_STRUCT[dtype]) // 2


@dataclass(frozen=True, slots=True)
class Format:
    """How one value is laid out in registers and scaled to engineering units."""

    dtype: DType
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    length: int = 0
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(
                f"unknown data type {self.dtype!r}; expected one of {', '.join(DTYPES)}"
            )
        for label, order in (("byte_order", self.byte_order), ("word_order", self.word_order)):
            if order not in ORDERS:
                raise ValueError(f"{label} must be 'big' or 'little', not {order!r}")
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"scale must be a finite non-zero number, not {self.scale!r}")
        if not math.isfinite(self.offset):
            raise ValueError(f"offset must be a finite number, not {self.offset!r}")
        if self.scaled and self.dtype in ("bool", "string"):
            raise ValueError(f"scale and offset do not apply to {self.dtype}")
        register_count(self.dtype, self.length)

    @property
    def count(self) -> int:
        return register_count(self.dtype, self.length)

    @property
    def scaled(self) -> bool:
        return self.scale != 1.0 or self.offset != 0.0


def _reorder(data: bytes, fmt: Format) -> bytes:
    """Convert between big-endian bytes and the device's layout (the mapping is its own inverse)."""
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if fmt.word_order == "little":
        words.reverse()
    if fmt.byte_order == "little":
        words = [w[::-1] for w in words]
    return b"".join(words)


def _needs_reorder(fmt: Format) -> bool:
    return fmt.byte_order == "little" or (fmt.word_order == "little" and fmt.count > 1)


def _to_registers(data: bytes, fmt: Format) -> list[int]:
    if _needs_reorder(fmt):
        data = _reorder(data, fmt)
    return list(struct.unpack(f">{len(data) // 2}H", data))


def pack_registers(registers: Sequence[int]) -> bytes:
    """A block of registers as big-endian bytes, the input of a ``BlockDecoder``."""
    try:
        return struct.pack(f">{len(registers)}H", *registers)
    except struct.error as exc:
        raise ValueError(f"register values must be 16-bit unsigned numbers: {exc}") from exc


def struct_code(fmt: Format) -> str | None:
    """The ``struct`` code that reads this value straight from big-endian bytes, if one does.

    True for unscaled numbers in big-endian byte and word order, the common
    case, which lets a driver decode every such value of a reply in one call.
    """
    if fmt.dtype in ("bool", "string") or fmt.scaled or _needs_reorder(fmt):
        return None
    return _STRUCT[fmt.dtype][1]


BlockDecoder = Callable[[bytes, int], bool | int | float | str]
"""Decodes the value starting at register ``index`` of a block packed by ``pack_registers``."""


def block_decoder(fmt: Format) -> BlockDecoder:
    """A decoder for values inside a whole reply, one struct call per value.

    A driver decodes many values per reply; packing the reply once and
    unpacking each value in place keeps the per-value cost small next to the
    network round trip.
    """
    size = 2 * fmt.count
    reorder = _needs_reorder(fmt)
    if fmt.dtype == "string":
        encoding = fmt.encoding

        def decode_string(data: bytes, index: int) -> str:
            raw = data[2 * index : 2 * index + size]
            if reorder:
                raw = _reorder(raw, fmt)
            return raw.rstrip(b"\x00").decode(encoding, errors="replace")

        return decode_string
    unpacker = struct.Struct(_STRUCT[fmt.dtype])
    scale, offset, scaled, is_bool = fmt.scale, fmt.offset, fmt.scaled, fmt.dtype == "bool"
    if not reorder and not scaled and not is_bool:
        unpack_from = unpacker.unpack_from

        def decode_plain(data: bytes, index: int) -> int | float:
            value: int | float = unpack_from(data, 2 * index)[0]
            return value

        return decode_plain

    def decode_value(data: bytes, index: int) -> bool | int | float:
        raw_bytes = data[2 * index : 2 * index + size]
        if reorder:
            raw_bytes = _reorder(raw_bytes, fmt)
        raw: int | float = unpacker.unpack(raw_bytes)[0]
        if is_bool:
            return raw != 0
        return raw * scale + offset if scaled else raw

    return decode_value


def _raw_number(fmt: Format, value: object) -> int | float:
    """The raw device number for an engineering value, or ValueError saying why not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if fmt.dtype == "bool" and isinstance(value, bool):
            return int(value)
        raise ValueError(f"{fmt.dtype} needs a number, not {type(value).__name__} {value!r}")
    if fmt.dtype == "bool":
        if value not in (0, 1):
            raise ValueError(f"bool needs True/False or 0/1, not {value!r}")
        return int(value)
    if fmt.dtype in FLOAT_TYPES:
        try:
            raw_f = float(value)
        except OverflowError as exc:
            raise ValueError(f"value {value!r} is out of range for {fmt.dtype}") from exc
        return (raw_f - fmt.offset) / fmt.scale if fmt.scaled else raw_f
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written to an integer type ({fmt.dtype})")
    try:
        raw_i = round((value - fmt.offset) / fmt.scale) if fmt.scaled else round(value)
    except OverflowError as exc:
        raise ValueError(f"value {value!r} is out of range for {fmt.dtype}") from exc
    low, high = _INT_RANGE[fmt.dtype]
    if not low <= raw_i <= high:
        raise ValueError(_out_of_range(fmt, value, raw_i, low, high))
    return raw_i


def _out_of_range(fmt: Format, value: object, raw: object, low: int, high: int) -> str:
    if not fmt.scaled:
        return f"value {value!r} is out of range for {fmt.dtype} ({low}..{high})"
    lo_eng = low * fmt.scale + fmt.offset
    hi_eng = high * fmt.scale + fmt.offset
    lo_eng, hi_eng = min(lo_eng, hi_eng), max(lo_eng, hi_eng)
    return (
        f"value {value!r} is out of range for {fmt.dtype} with scale {fmt.scale:g} "
        f"and offset {fmt.offset:g} ({lo_eng:g}..{hi_eng:g}; raw {raw!r} not in {low}..{high})"
    )


def encode(fmt: Format, value: object) -> list[int]:
    """Registers that make the device hold ``value`` (in engineering units)."""
    if fmt.dtype == "string":
        if not isinstance(value, str):
            raise ValueError(f"string needs a str, not {type(value).__name__} {value!r}")
        try:
            data = value.encode(fmt.encoding)
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{value!r} cannot be encoded as {fmt.encoding}: {exc.reason}"
            ) from exc
        size = 2 * fmt.count
        if len(data) > size:
            raise ValueError(
                f"string of {len(data)} bytes does not fit {fmt.count} registers ({size} bytes)"
            )
        return _to_registers(data.ljust(size, b"\x00"), fmt)
    raw = _raw_number(fmt, value)
    try:
        data = struct.pack(_STRUCT[fmt.dtype], raw)
    except (OverflowError, struct.error) as exc:
        raise ValueError(f"value {value!r} is out of range for {fmt.dtype}") from exc
    return _to_registers(data, fmt)


def decode(fmt: Format, registers: Sequence[int]) -> bool | int | float | str:
    """The engineering value held in ``registers`` (exactly ``fmt.count`` of them)."""
    if len(registers) != fmt.count:
        raise ValueError(f"{fmt.dtype} needs {fmt.count} registers, got {len(registers)}")
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise ValueError(f"register values must be 16-bit unsigned numbers: {list(registers)}")
    return block_decoder(fmt)(pack_registers(registers), 0)
