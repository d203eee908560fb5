"""The register codec: known layouts, every type × byte order × word order, scaling, refusals."""

from __future__ import annotations

import itertools
import math
import struct

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drivers.codec import (
    DTYPES,
    INTEGER_TYPES,
    ORDERS,
    DType,
    Format,
    Order,
    block_decoder,
    decode,
    encode,
    pack_registers,
    register_count,
)

NUMERIC: list[DType] = [d for d in DTYPES if d not in ("bool", "string")]
LAYOUTS = list(itertools.product(ORDERS, ORDERS))
INT_BOUNDS = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}

registers16 = st.integers(min_value=0, max_value=0xFFFF)
scales = st.sampled_from([0.001, 0.01, 0.1, 0.5, 2.0, 10.0, -1.0, -0.25])
offsets = st.sampled_from([0.0, -40.0, 273.15, 1000.0, -0.5])


# ---------------------------------------------------------------- known vectors


def test_float32_one_big_big_is_3f80_0000() -> None:
    assert encode(Format("float32"), 1.0) == [0x3F80, 0x0000]
    assert decode(Format("float32"), [0x3F80, 0x0000]) == 1.0


@pytest.mark.parametrize(
    ("byte_order", "word_order", "registers"),
    [
        ("big", "big", [0x1234, 0x5678]),  # ABCD
        ("big", "little", [0x5678, 0x1234]),  # CDAB, "word swap"
        ("little", "big", [0x3412, 0x7856]),  # BADC, "byte swap"
        ("little", "little", [0x7856, 0x3412]),  # DCBA
    ],
)
def test_int32_layouts(byte_order: Order, word_order: Order, registers: list[int]) -> None:
    fmt = Format("uint32", byte_order, word_order)
    assert encode(fmt, 0x12345678) == registers
    assert decode(fmt, registers) == 0x12345678


@pytest.mark.parametrize(
    ("byte_order", "word_order", "registers"),
    [
        ("big", "big", [0x3F80, 0x0000]),
        ("big", "little", [0x0000, 0x3F80]),
        ("little", "big", [0x803F, 0x0000]),
        ("little", "little", [0x0000, 0x803F]),
    ],
)
def test_float32_layouts(byte_order: Order, word_order: Order, registers: list[int]) -> None:
    assert encode(Format("float32", byte_order, word_order), 1.0) == registers


def test_known_scalars() -> None:
    assert encode(Format("int16"), -1) == [0xFFFF]
    assert decode(Format("int16"), [0x8000]) == -32768
    assert decode(Format("uint16"), [0x8000]) == 32768
    assert encode(Format("uint64"), 0x0102030405060708) == [0x0102, 0x0304, 0x0506, 0x0708]
    assert encode(Format("int64", word_order="little"), 0x0102030405060708) == [
        0x0708,
        0x0506,
        0x0304,
        0x0102,
    ]
    assert encode(Format("float64"), 1.0) == [0x3FF0, 0, 0, 0]
    assert encode(Format("float32"), -2.5) == [0xC020, 0x0000]


def test_bool_in_a_register() -> None:
    assert encode(Format("bool"), True) == [1]
    assert encode(Format("bool", byte_order="little"), True) == [0x0100]
    assert decode(Format("bool"), [0]) is False
    assert decode(Format("bool"), [0x0200]) is True


def test_strings_are_nul_padded_and_byte_ordered() -> None:
    fmt = Format("string", length=3)
    assert encode(fmt, "ABC") == [0x4142, 0x4300, 0x0000]
    assert decode(fmt, [0x4142, 0x4300, 0x0000]) == "ABC"
    assert encode(Format("string", byte_order="little", length=2), "ABC") == [0x4241, 0x0043]
    assert encode(Format("string", word_order="little", length=2), "ABCD") == [0x4344, 0x4142]
    assert decode(Format("string", length=2), [0x4F4B, 0x0000]) == "OK"
    assert encode(Format("string", length=2), "µ1") == [0xC2B5, 0x3100]


def test_scaling_known_values() -> None:
    tenth = Format("int16", scale=0.1)
    assert encode(tenth, 37.5) == [375]
    assert decode(tenth, [375]) == pytest.approx(37.5)
    assert encode(tenth, -0.04) == [0]  # rounds to the nearest raw count
    kelvin = Format("uint16", scale=0.01, offset=-273.15)
    assert decode(kelvin, [31015]) == pytest.approx(37.0)
    assert encode(kelvin, 37.0) == [31015]
    assert decode(Format("float32", scale=2.0, offset=1.0), [0x3F80, 0]) == 3.0


# ---------------------------------------------------------------- register_count


def test_register_count() -> None:
    assert [register_count(d) for d in NUMERIC] == [1, 1, 2, 2, 4, 4, 2, 4]
    assert register_count("bool") == 1
    assert register_count("string", 10) == 10
    with pytest.raises(ValueError, match="length of at least 1"):
        register_count("string", 0)
    with pytest.raises(ValueError, match="unknown data type"):
        register_count("int8")  # type: ignore[arg-type]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("fmt", "value", "message"),
    [
        (Format("int16"), 32768, r"out of range for int16 \(-32768\.\.32767\)"),
        (Format("uint16"), -1, r"out of range for uint16"),
        (Format("uint32"), 2**32, r"out of range for uint32"),
        (Format("int64"), 2**63, r"out of range for int64"),
        (Format("uint64"), -1, r"out of range for uint64"),
        (Format("int16", scale=0.1), 3276.8, r"-3276\.8\.\.3276\.7; raw 32768"),
        (Format("uint16", offset=-40.0), -41, r"raw -1 not in 0\.\.65535"),
        (Format("float32"), 1e39, r"out of range for float32"),
        (Format("int32"), math.nan, r"cannot be written to an integer type"),
        (Format("int32"), math.inf, r"cannot be written to an integer type"),
        (Format("int32"), "12", r"needs a number, not str"),
        (Format("float32"), None, r"needs a number, not NoneType"),
        (Format("int16"), True, r"needs a number, not bool"),
        (Format("bool"), 2, r"bool needs True/False or 0/1"),
        (Format("string", length=2), "ABCDE", r"5 bytes does not fit 2 registers"),
        (Format("string", length=2), 12, r"string needs a str"),
        (Format("string", length=2, encoding="ascii"), "µ", r"cannot be encoded as ascii"),
    ],
)
def test_encode_refuses(fmt: Format, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(fmt, value)


def test_decode_refuses_wrong_register_count_and_non_16_bit_values() -> None:
    with pytest.raises(ValueError, match="float32 needs 2 registers, got 1"):
        decode(Format("float32"), [0x3F80])
    with pytest.raises(ValueError, match="16-bit unsigned"):
        decode(Format("uint16"), [0x10000])


def test_format_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="scale must be a finite non-zero"):
        Format("int16", scale=0.0)
    with pytest.raises(ValueError, match="byte_order must be 'big' or 'little'"):
        Format("int16", byte_order="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not apply to string"):
        Format("string", length=2, scale=2.0)


def test_invalid_utf8_from_a_device_decodes_with_replacement_instead_of_failing() -> None:
    assert decode(Format("string", length=1), [0xFF41]) == "\ufffdA"


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(("byte_order", "word_order"), LAYOUTS)
@pytest.mark.parametrize("dtype", [d for d in NUMERIC if d in INTEGER_TYPES])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_integer_round_trip_every_layout(
    dtype: DType, byte_order: Order, word_order: Order, data: st.DataObject
) -> None:
    fmt = Format(dtype, byte_order, word_order)
    low, high = INT_BOUNDS[dtype]
    value = data.draw(st.integers(min_value=low, max_value=high))
    registers = encode(fmt, value)
    assert len(registers) == register_count(dtype)
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode(fmt, registers) == value
    raw_regs = data.draw(st.lists(registers16, min_size=fmt.count, max_size=fmt.count))
    assert encode(fmt, decode(fmt, raw_regs)) == raw_regs


@pytest.mark.parametrize(("byte_order", "word_order"), LAYOUTS)
@pytest.mark.parametrize("dtype", [d for d in NUMERIC if d in INTEGER_TYPES])
@settings(max_examples=60, deadline=None)
@given(data=st.data(), scale=scales, offset=offsets)
def test_scaled_integer_round_trip_every_layout(
    dtype: DType,
    byte_order: Order,
    word_order: Order,
    data: st.DataObject,
    scale: float,
    offset: float,
) -> None:
    fmt = Format(dtype, byte_order, word_order, scale=scale, offset=offset)
    low, high = INT_BOUNDS[dtype]
    # Scaled values travel as floats: exact only below 2**53 raw counts.
    raw = data.draw(st.integers(min_value=max(low, -(2**50)), max_value=min(high, 2**50)))
    registers = encode(Format(dtype, byte_order, word_order), raw)
    value = decode(fmt, registers)
    assert isinstance(value, float)
    assert value == pytest.approx(raw * scale + offset, rel=1e-12, abs=1e-9)
    assert encode(fmt, value) == registers


@pytest.mark.parametrize(("byte_order", "word_order"), LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_float_round_trip_every_layout(
    dtype: DType, byte_order: Order, word_order: Order, data: st.DataObject
) -> None:
    fmt = Format(dtype, byte_order, word_order)
    width = 32 if dtype == "float32" else 64
    value = data.draw(st.floats(width=width, allow_nan=False))
    assert decode(fmt, encode(fmt, value)) == value
    raw_regs = data.draw(st.lists(registers16, min_size=fmt.count, max_size=fmt.count))
    decoded = decode(fmt, raw_regs)
    assert isinstance(decoded, float)
    assume(not math.isnan(decoded))  # NaN payloads are not preserved through Python floats
    assert encode(fmt, decoded) == raw_regs


@pytest.mark.parametrize(("byte_order", "word_order"), LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=60, deadline=None)
@given(
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    scale=scales,
    offset=offsets,
)
def test_scaled_float_round_trip_every_layout(
    dtype: DType, byte_order: Order, word_order: Order, value: float, scale: float, offset: float
) -> None:
    fmt = Format(dtype, byte_order, word_order, scale=scale, offset=offset)
    back = decode(fmt, encode(fmt, value))
    assert isinstance(back, float)
    tolerance = 1e-6 if dtype == "float32" else 1e-12
    assert back == pytest.approx(value, rel=tolerance, abs=tolerance * (abs(offset) + 1))


@pytest.mark.parametrize(("byte_order", "word_order"), LAYOUTS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_string_round_trip_every_layout(
    byte_order: Order, word_order: Order, data: st.DataObject
) -> None:
    length = data.draw(st.integers(min_value=1, max_value=8))
    text = data.draw(
        st.text(
            st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
            max_size=2 * length,
        )
    )
    fmt = Format("string", byte_order, word_order, length=length)
    assume(len(text.encode("utf-8")) <= 2 * length)
    registers = encode(fmt, text)
    assert len(registers) == length
    assert decode(fmt, registers) == text


@pytest.mark.parametrize(("byte_order", "word_order"), LAYOUTS)
@given(value=st.booleans())
def test_bool_round_trip_every_layout(byte_order: Order, word_order: Order, value: bool) -> None:
    fmt = Format("bool", byte_order, word_order)
    assert decode(fmt, encode(fmt, value)) is value


@pytest.mark.parametrize("dtype", NUMERIC)
@given(data=st.data())
def test_orders_are_word_reversal_and_byte_swap_of_big_endian(
    dtype: DType, data: st.DataObject
) -> None:
    """Little word order reverses the words; little byte order swaps each word's bytes."""
    fmt = Format(dtype)
    regs = data.draw(st.lists(registers16, min_size=fmt.count, max_size=fmt.count))
    value = decode(fmt, regs)
    assume(not (isinstance(value, float) and math.isnan(value)))
    swapped = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    assert encode(Format(dtype, "big", "little"), value) == regs[::-1]
    assert encode(Format(dtype, "little", "big"), value) == swapped
    assert encode(Format(dtype, "little", "little"), value) == swapped[::-1]


def test_float32_encodes_the_nearest_single_precision_value() -> None:
    fmt = Format("float32")
    expected = struct.unpack(">f", struct.pack(">f", 0.1))[0]
    assert decode(fmt, encode(fmt, 0.1)) == expected
    assert decode(fmt, encode(fmt, 0.1)) != 0.1


@pytest.mark.parametrize(("byte_order", "word_order"), LAYOUTS)
@pytest.mark.parametrize("dtype", [*NUMERIC, "bool", "string"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_block_decoder_reads_a_value_in_the_middle_of_a_reply(
    dtype: DType, byte_order: Order, word_order: Order, data: st.DataObject
) -> None:
    """A driver decodes each value in place from one packed reply."""
    fmt = Format(dtype, byte_order, word_order, length=3 if dtype == "string" else 0)
    before = data.draw(st.lists(registers16, max_size=5))
    value_regs = data.draw(st.lists(registers16, min_size=fmt.count, max_size=fmt.count))
    after = data.draw(st.lists(registers16, max_size=5))
    block = pack_registers(before + value_regs + after)
    expected = decode(fmt, value_regs)
    got = block_decoder(fmt)(block, len(before))
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert got == expected
