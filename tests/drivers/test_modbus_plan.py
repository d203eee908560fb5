"""Read planning, point declarations, address parsing and backoff: pure functions, no sockets."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus import (
    ModbusPoint,
    ModbusSettings,
    ReadBlock,
    backoff_delays,
    exception_text,
    parse_address,
    plan_reads,
)


def hr(name: str, address: int, dtype: str = "uint16", length: int = 0) -> ModbusPoint:
    return ModbusPoint(name, "holding_register", address, dtype, length=length)  # type: ignore[arg-type]


def spans(blocks: list[ReadBlock]) -> list[tuple[str, int, int]]:
    return [(b.table, b.address, b.count) for b in blocks]


# ---------------------------------------------------------------- known plans


def test_contiguous_points_make_one_request() -> None:
    points = [hr("a", 0), hr("b", 1, "float32"), hr("c", 3, "int64")]
    assert spans(plan_reads(points)) == [("holding_register", 0, 7)]


def test_points_join_across_a_gap_up_to_max_gap() -> None:
    points = [hr("a", 0), hr("b", 11, "float32")]  # 10 unused registers between
    assert spans(plan_reads(points, max_gap=10)) == [("holding_register", 0, 13)]
    assert spans(plan_reads(points, max_gap=9)) == [
        ("holding_register", 0, 1),
        ("holding_register", 11, 2),
    ]


def test_zero_gap_joins_only_adjacent_points() -> None:
    points = [hr("a", 0), hr("b", 1), hr("c", 3)]
    assert spans(plan_reads(points, max_gap=0)) == [
        ("holding_register", 0, 2),
        ("holding_register", 3, 1),
    ]


def test_input_order_does_not_matter() -> None:
    points = [hr("c", 40), hr("a", 0), hr("b", 20, "float64")]
    blocks = plan_reads(points, max_gap=20)
    assert spans(blocks) == [("holding_register", 0, 41)]
    assert [p.name for p in blocks[0].points] == ["a", "b", "c"]


def test_register_requests_never_exceed_125() -> None:
    points = [hr(f"p{i}", 2 * i, "float32") for i in range(100)]  # 200 contiguous registers
    blocks = plan_reads(points)
    assert spans(blocks) == [("holding_register", 0, 124), ("holding_register", 124, 76)]
    assert sum(len(b.points) for b in blocks) == 100


def test_a_point_is_never_split_across_requests() -> None:
    points = [hr("a", 0, "string", length=120), hr("b", 120, "float64")]  # 124 registers
    assert spans(plan_reads(points)) == [("holding_register", 0, 124)]
    points = [hr("a", 0, "string", length=122), hr("b", 122, "float64")]  # would be 126
    assert spans(plan_reads(points)) == [("holding_register", 0, 122), ("holding_register", 122, 4)]


def test_bit_requests_never_exceed_2000() -> None:
    coils = [ModbusPoint(f"c{i}", "coil", i, "bool") for i in range(0, 4500, 3)]
    blocks = plan_reads(coils, max_bit_gap=2)
    assert [b.count for b in blocks] == [1999, 1999, 496]
    assert spans(blocks)[1] == ("coil", 2001, 1999)


def test_smaller_device_limits_are_honoured() -> None:
    points = [hr(f"p{i}", i) for i in range(50)]
    assert [b.count for b in plan_reads(points, max_registers=20)] == [20, 20, 10]


def test_tables_are_planned_separately() -> None:
    points = [
        ModbusPoint("c", "coil", 5, "bool"),
        ModbusPoint("d", "discrete_input", 5, "bool"),
        ModbusPoint("h", "holding_register", 5),
        ModbusPoint("i", "input_register", 5),
        ModbusPoint("c2", "coil", 6, "bool"),
    ]
    assert spans(plan_reads(points)) == [
        ("coil", 5, 2),
        ("discrete_input", 5, 1),
        ("holding_register", 5, 1),
        ("input_register", 5, 1),
    ]


def test_overlapping_points_share_registers() -> None:
    points = [hr("whole", 10, "float32"), hr("high_word", 10), hr("low_word", 11)]
    blocks = plan_reads(points, max_gap=0)
    assert spans(blocks) == [("holding_register", 10, 2)]
    assert {p.name for p in blocks[0].points} == {"whole", "high_word", "low_word"}


def test_no_points_no_requests() -> None:
    assert plan_reads([]) == []


def test_negative_gap_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        plan_reads([hr("a", 0)], max_gap=-1)


# ---------------------------------------------------------------- planner properties


@st.composite
def point_sets(draw: st.DrawFn) -> list[ModbusPoint]:
    count = draw(st.integers(min_value=0, max_value=60))
    points = []
    for i in range(count):
        table = draw(st.sampled_from(["coil", "holding_register", "input_register"]))
        if table == "coil":
            points.append(ModbusPoint(f"p{i}", "coil", draw(st.integers(0, 5000)), "bool"))
        else:
            dtype = draw(st.sampled_from(["uint16", "float32", "float64", "string"]))
            length = draw(st.integers(1, 40)) if dtype == "string" else 0
            address = draw(st.integers(0, 600))
            points.append(ModbusPoint(f"p{i}", table, address, dtype, length=length))
    return points


@settings(max_examples=200, deadline=None)
@given(points=point_sets(), gap=st.integers(0, 30), bit_gap=st.integers(0, 100))
def test_plan_covers_every_point_within_limits_and_cannot_be_merged(
    points: list[ModbusPoint], gap: int, bit_gap: int
) -> None:
    blocks = plan_reads(points, max_gap=gap, max_bit_gap=bit_gap)

    placed = [p.name for b in blocks for p in b.points]
    assert sorted(placed) == sorted(p.name for p in points)  # each point exactly once
    for b in blocks:
        limit = 2000 if b.table == "coil" else 125
        assert 1 <= b.count <= limit
        assert all(p.table == b.table for p in b.points)
        assert all(b.address <= p.address and p.end <= b.address + b.count for p in b.points)
        assert b.address == min(p.address for p in b.points)
        assert b.address + b.count == max(p.end for p in b.points)
        allowed = bit_gap if b.table == "coil" else gap
        covered = sorted((p.address, p.end) for p in b.points)
        reach = covered[0][1]
        for start, end in covered[1:]:
            assert start - reach <= allowed  # no hole wider than the allowed gap
            reach = max(reach, end)
    for table, group in itertools.groupby(blocks, key=lambda b: b.table):
        ordered = list(group)
        for before, after in itertools.pairwise(ordered):
            assert after.address >= before.address
            first = min(after.points, key=lambda p: (p.address, p.end))
            allowed = bit_gap if table == "coil" else gap
            limit = 2000 if table == "coil" else 125
            joined_end = max(before.address + before.count, first.end)
            assert (
                first.address - (before.address + before.count) > allowed
                or joined_end - before.address > limit
            ), "greedy planning would have joined these blocks"


# ---------------------------------------------------------------- point declarations


def test_point_defaults_single_write_for_one_register_and_multiple_otherwise() -> None:
    assert hr("a", 0).write_function == "single"
    assert hr("b", 0, "float32").write_function == "multiple"
    assert ModbusPoint("c", "coil", 0, "bool").write_function == "single"
    assert hr("s", 0, "string", length=4).count == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "coil", "address": 0, "dtype": "uint16"}, "a coil holds a bool"),
        ({"table": "input_register", "address": 0, "writable": True}, "cannot be written"),
        ({"table": "discrete_input", "address": 0, "dtype": "bool", "writable": True},
         "cannot be written"),
        ({"table": "holding_register", "address": 65535, "dtype": "float32"}, "outside 0..65535"),
        ({"table": "holding_register", "address": -1}, "outside 0..65535"),
        ({"table": "register", "address": 0}, "table must be one of"),
        ({"table": "holding_register", "address": 0, "dtype": "float32",
          "write_function": "single"}, "fc 6 writes one register"),
        ({"table": "holding_register", "address": 0, "dtype": "string", "length": 126},
         "do not fit one request"),
        ({"table": "holding_register", "address": 0, "dtype": "string"}, "length of at least 1"),
        ({"table": "holding_register", "address": 0, "write_function": "fc6"},
         "'single' or 'multiple'"),
    ],
)
def test_point_declaration_errors_say_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModbusPoint("tag", **kwargs)


def test_settings_refuse_protocol_violations() -> None:
    with pytest.raises(ValueError, match=r"max_registers must be 1\.\.125"):
        ModbusSettings(max_registers=126)
    with pytest.raises(ValueError, match="device_id 300"):
        ModbusSettings(device_id=300)
    with pytest.raises(ValueError, match="reconnect_max cannot be below"):
        ModbusSettings(reconnect_initial=5, reconnect_max=1)


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hr:100", ("holding_register", 100)),
        ("HR:0", ("holding_register", 0)),
        ("ir:4", ("input_register", 4)),
        ("coil:3", ("coil", 3)),
        ("di:7", ("discrete_input", 7)),
        (" hr : 0x10 ", ("holding_register", 16)),
        ("holding_register:65535", ("holding_register", 65535)),
        ("40001", ("holding_register", 0)),
        ("40100", ("holding_register", 99)),
        ("30005", ("input_register", 4)),
        ("10008", ("discrete_input", 7)),
        ("00001", ("coil", 0)),
        ("465536", ("holding_register", 65535)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("xr:1", "unknown Modbus table 'xr'"),
        ("hr:", "is not a number"),
        ("hr:-1", "is not a number"),
        ("hr:1.5", "is not a number"),
        ("hr:70000", "above 65535"),
        ("40000", "out of range"),
        ("470000", "out of range"),
        ("20001", "must start with 0, 1, 3 or 4"),
        ("4001", "must have 5 digits"),
        ("temperature", "write table:address"),
        ("", "write table:address"),
    ],
)
def test_parse_address_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


# ---------------------------------------------------------------- misc


def test_backoff_doubles_up_to_the_cap() -> None:
    assert list(itertools.islice(backoff_delays(0.5, 4.0), 7)) == [0.5, 1, 2, 4, 4, 4, 4]
    assert list(itertools.islice(backoff_delays(3.0, 5.0), 3)) == [3.0, 5.0, 5.0]


def test_exception_text_names_the_code() -> None:
    assert exception_text(2) == "Modbus exception 2 (ILLEGAL DATA ADDRESS)"
    assert exception_text(11) == "Modbus exception 11 (GATEWAY TARGET DEVICE FAILED TO RESPOND)"
    assert exception_text(99) == "Modbus exception 99 (UNKNOWN)"
