"""Modbus addressing and read planning, free of any Modbus library.

The configuration checker (in the HMI core, which may not import pymodbus)
and the driver must agree on what an address means and whether a data type
fits it, so both use this module: ``parse_address`` reads the address
syntax, ``ModbusPoint`` refuses a type its table cannot hold, and
``plan_reads`` joins points into as few requests as the protocol allows.
``drivers.modbus`` re-exports every name here.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

from drivers.codec import BlockDecoder, DType, Format, Order, block_decoder, struct_code

Table = Literal["coil", "discrete_input", "holding_register", "input_register"]
WriteFunction = Literal["single", "multiple"]
TABLES: tuple[Table, ...] = get_args(Table)
BIT_TABLES = frozenset({"coil", "discrete_input"})
PROTOCOL_LIMIT: dict[Table, int] = {
    "coil": 2000,
    "discrete_input": 2000,
    "holding_register": 125,
    "input_register": 125,
}
"""Most values one read request may ask for (Modbus application protocol 1.1b3)."""


_ALIASES: dict[str, Table] = {
    "coil": "coil",
    "co": "coil",
    "c": "coil",
    "di": "discrete_input",
    "discrete_input": "discrete_input",
    "input": "discrete_input",
    "hr": "holding_register",
    "holding_register": "holding_register",
    "holding": "holding_register",
    "ir": "input_register",
    "input_register": "input_register",
}
_MODICON: dict[str, Table] = {
    "0": "coil",
    "1": "discrete_input",
    "3": "input_register",
    "4": "holding_register",
}


def parse_address(text: str) -> tuple[Table, int]:
    """``hr:100``, ``ir:4``, ``coil:3``, ``di:7`` or Modicon ``40001`` → (table, 0-based address).

    Modicon numbers are 1-based with the table in the first digit (0 coil,
    1 discrete input, 3 input register, 4 holding register): five digits for
    addresses up to 9999, six digits (``400001``) for up to 65536.
    """
    s = text.strip()
    if ":" in s:
        prefix, _, number = s.partition(":")
        table = _ALIASES.get(prefix.strip().lower())
        if table is None:
            raise ValueError(f"unknown Modbus table {prefix!r} in {text!r}; use hr, ir, coil or di")
        number = number.strip()
        if not re.fullmatch(r"0x[0-9a-fA-F]+|[0-9]+", number):
            raise ValueError(f"address {number!r} in {text!r} is not a number")
        address = int(number, 0) if number.startswith("0x") else int(number)
        if address > 65535:
            raise ValueError(f"address {address} in {text!r} is above 65535")
        return table, address
    if not s.isdigit():
        raise ValueError(
            f"cannot read Modbus address {text!r}; write table:address (hr:0, ir:4, coil:3, "
            "di:7) or a Modicon number (40001)"
        )
    if len(s) not in (5, 6):
        raise ValueError(
            f"Modicon address {text!r} must have 5 digits (40001) or 6 digits (400001)"
        )
    table = _MODICON.get(s[0])
    if table is None:
        raise ValueError(f"Modicon address {text!r} must start with 0, 1, 3 or 4")
    modicon = int(s[1:])
    if not 1 <= modicon <= 65536:
        raise ValueError(f"Modicon address {text!r} is out of range (numbering starts at 1)")
    return table, modicon - 1


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    """One value of a Modbus device as the HMI names it.

    ``write_function`` chooses fc 5/6 (``single``) or fc 15/16 (``multiple``);
    left as None it is ``single`` for one coil or register and ``multiple``
    otherwise, because fc 6 cannot carry a 32-bit value.
    """

    name: str
    table: Table
    address: int
    dtype: DType = "uint16"
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    length: int = 0
    writable: bool = False
    write_function: WriteFunction | None = None
    fmt: Format = field(init=False, repr=False, compare=False)
    count: int = field(init=False, repr=False, compare=False)
    decoder: BlockDecoder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"point {self.name!r}"
        if self.table not in TABLES:
            raise ValueError(f"{where}: table must be one of {', '.join(TABLES)}")
        bits = self.table in BIT_TABLES
        if bits and self.dtype != "bool":
            raise ValueError(f"{where}: a {self.table} holds a bool, not {self.dtype}")
        if self.writable and self.table in ("discrete_input", "input_register"):
            raise ValueError(f"{where}: a {self.table} cannot be written")
        fmt = Format(
            self.dtype, self.byte_order, self.word_order, self.scale, self.offset, self.length
        )
        count = 1 if bits else fmt.count
        if self.address < 0 or self.address + count - 1 > 65535:
            raise ValueError(f"{where}: address {self.address} is outside 0..65535")
        if count > PROTOCOL_LIMIT[self.table]:
            raise ValueError(f"{where}: {count} registers do not fit one request (max 125)")
        function = self.write_function or ("single" if count == 1 else "multiple")
        if function not in get_args(WriteFunction):
            raise ValueError(f"{where}: write_function must be 'single' or 'multiple'")
        if function == "single" and count > 1:
            raise ValueError(f"{where}: fc 6 writes one register; {self.dtype} needs {count}")
        object.__setattr__(self, "write_function", function)
        object.__setattr__(self, "fmt", fmt)
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "decoder", block_decoder(fmt))

    @property
    def end(self) -> int:
        """One past the last address the point occupies."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` values of ``table`` from ``address``."""

    table: Table
    address: int
    count: int
    points: tuple[ModbusPoint, ...]
    layout: tuple[tuple[str, BlockDecoder, int], ...] = field(init=False, repr=False, compare=False)
    """(point name, decoder, offset in the reply) of the points ``unpacker`` does not read."""
    plain: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """Names of the values ``unpacker`` returns, in order."""
    unpacker: struct.Struct | None = field(init=False, repr=False, compare=False)
    plain_floats: tuple[str, ...] = field(init=False, repr=False, compare=False)
    layout_floats: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes: list[str] = []
        plain: list[str] = []
        layout: list[tuple[str, BlockDecoder, int]] = []
        reached = self.address
        for p in sorted(self.points, key=lambda p: p.address):
            code = None if self.table in BIT_TABLES else struct_code(p.fmt)
            if code is None or p.address < reached:
                layout.append((p.name, p.decoder, p.address - self.address))
                continue
            codes.append("x" * (2 * (p.address - reached)) + code)
            plain.append(p.name)
            reached = p.end
        floats = {p.name for p in self.points if p.dtype in ("float32", "float64")}
        object.__setattr__(self, "layout", tuple(layout))
        object.__setattr__(self, "plain", tuple(plain))
        object.__setattr__(self, "unpacker", struct.Struct(">" + "".join(codes)) if codes else None)
        object.__setattr__(self, "plain_floats", tuple(n for n in plain if n in floats))
        object.__setattr__(self, "layout_floats", tuple(n for n, _, _ in layout if n in floats))


def plan_reads(
    points: Iterable[ModbusPoint],
    *,
    max_gap: int = 10,
    max_bit_gap: int = 64,
    max_registers: int = 125,
    max_bits: int = 2000,
) -> list[ReadBlock]:
    """Join points into as few read requests as the limits allow.

    Points of one table are sorted by address; a point joins the current
    block when at most ``max_gap`` unused registers (``max_bit_gap`` bits)
    separate it from the block and the block stays within the request limit.
    Overlapping points share their registers.
    """
    if max_gap < 0 or max_bit_gap < 0:
        raise ValueError("max_gap and max_bit_gap cannot be negative")
    unique = {p.name: p for p in points}
    blocks: list[ReadBlock] = []
    for table in TABLES:
        mine = sorted(
            (p for p in unique.values() if p.table == table), key=lambda p: (p.address, p.end)
        )
        bits = table in BIT_TABLES
        gap = max_bit_gap if bits else max_gap
        limit = min(max_bits if bits else max_registers, PROTOCOL_LIMIT[table])
        start = end = 0
        members: list[ModbusPoint] = []
        for p in mine:
            if p.count > limit:
                raise ValueError(
                    f"point {p.name!r} needs {p.count} values; a request holds {limit}"
                )
            if members and p.address - end <= gap and max(end, p.end) - start <= limit:
                members.append(p)
                end = max(end, p.end)
                continue
            if members:
                blocks.append(ReadBlock(table, start, end - start, tuple(members)))
            start, end, members = p.address, p.end, [p]
        if members:
            blocks.append(ReadBlock(table, start, end - start, tuple(members)))
    return blocks
