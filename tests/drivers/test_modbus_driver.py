"""ModbusDriver against the simulated PLC on a real socket: reads, writes, refusals, dead links."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from drivers.base import (
    DeviceRefused,
    Driver,
    LinkDown,
    LinkState,
    PointError,
    Quality,
    WriteNotConfirmed,
)
from drivers.codec import Format, encode
from drivers.modbus import ModbusDriver, ModbusPoint, ModbusSettings, SerialSettings
from drivers.sim.plc import BioreactorPLC

pytestmark = pytest.mark.timeout(20)

SKID = [
    ModbusPoint("FEED_PUMP", "coil", 0, "bool", writable=True),
    ModbusPoint("HARVEST_VALVE", "coil", 1, "bool", writable=True, write_function="multiple"),
    ModbusPoint("HEATER_FAULT", "discrete_input", 0, "bool"),
    ModbusPoint("ESTOP", "discrete_input", 5, "bool"),
    ModbusPoint("PUMP_RUNNING", "discrete_input", 8, "bool"),
    ModbusPoint("TEMP_PV", "input_register", 0, "float32"),
    ModbusPoint("UPTIME", "input_register", 12, "uint32"),
    ModbusPoint("TEMP_SP", "holding_register", 0, "float32", writable=True),
    ModbusPoint("AGIT_SP", "holding_register", 6, "float32", writable=True),
    ModbusPoint("STAGE", "holding_register", 10, "uint16", writable=True),
    ModbusPoint("BATCH_ID", "holding_register", 12, "string", length=8, writable=True),
]
NAMES = [p.name for p in SKID]


def reads(plc: BioreactorPLC) -> list[tuple[int, int, int]]:
    return [entry for entry in plc.store.journal if entry[0] in (1, 2, 3, 4)]


async def test_driver_satisfies_the_protocol(plc: BioreactorPLC, make_driver) -> None:
    driver, log = await make_driver(plc.port, SKID)
    assert isinstance(driver, Driver)
    assert driver.link_state is LinkState.UP
    assert log.states == [LinkState.UP]


async def test_reads_every_table_in_one_request_per_table(plc: BioreactorPLC, make_driver) -> None:
    plc.inject_fault("ESTOP")
    plc.set("TEMP_PV", 36.5)
    plc.set("BATCH_ID", "B-2024-017")
    plc.set("STAGE", 3)
    plc.sim_time = 70000.0
    plc.step(0.5)
    driver, _ = await make_driver(plc.port, SKID)
    plc.store.journal.clear()

    samples = await driver.read(NAMES)

    got = {s.point: s for s in samples}
    assert [s.point for s in samples] == NAMES
    assert all(s.quality is Quality.GOOD and s.reason == "" for s in samples), samples
    assert got["FEED_PUMP"].value is False
    assert got["ESTOP"].value is True
    assert got["HEATER_FAULT"].value is False
    assert got["TEMP_PV"].value == pytest.approx(plc.get("TEMP_PV"))
    assert got["UPTIME"].value == 70000
    assert got["TEMP_SP"].value == 37.0
    assert got["STAGE"].value == 3
    assert got["BATCH_ID"].value == "B-2024-017"
    assert all(s.source_time is None and s.server_time.tzinfo is not None for s in samples)
    assert sorted(fc for fc, _, _ in reads(plc)) == [1, 2, 3, 4]
    assert (2, 0, 9) in reads(plc)  # discrete inputs 0..8 in one request
    assert (3, 0, 20) in reads(plc)  # holding registers 0..19 in one request


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        (Format("int16", "little", "big", scale=0.1), -12.5),
        (Format("uint16", offset=-40.0), 4242.0),
        (Format("int32", "big", "little"), -123456),
        (Format("uint32", "little", "little"), 4_000_000_000),
        (Format("int64", "little", "big"), -(2**40) - 7),
        (Format("uint64", "big", "little"), 2**63 + 11),
        (Format("float32", "big", "little", scale=2.0, offset=1.0), -12.5),
        (Format("float64", "little", "little"), math.pi),
        (Format("string", "little", "big", length=3), "abcde"),
    ],
    ids=lambda v: f"{v.dtype}-{v.byte_order}-{v.word_order}" if isinstance(v, Format) else "",
)
async def test_reads_every_layout_from_spare_registers(
    plc: BioreactorPLC, make_driver, fmt: Format, value: object
) -> None:
    plc.set_raw("holding_register", 200, encode(fmt, value))
    plc.set_raw("input_register", 120, encode(fmt, value))
    layout = {
        "dtype": fmt.dtype,
        "byte_order": fmt.byte_order,
        "word_order": fmt.word_order,
        "scale": fmt.scale,
        "offset": fmt.offset,
        "length": fmt.length,
    }
    points = [
        ModbusPoint("hr", "holding_register", 200, **layout),
        ModbusPoint("ir", "input_register", 120, **layout),
    ]
    driver, _ = await make_driver(plc.port, points)

    samples = await driver.read(["hr", "ir"])

    assert all(s.good for s in samples), samples
    assert [s.value for s in samples] == [pytest.approx(value)] * 2 if not isinstance(
        value, str
    ) else [value] * 2


async def test_one_request_decodes_mixed_gapped_and_overlapping_points(plc, make_driver) -> None:
    """Plain big-endian values are unpacked together, the rest one by one: same results."""
    layouts = [
        ModbusPoint("f32", "holding_register", 300, "float32"),
        ModbusPoint("hi_word", "holding_register", 300),  # overlaps f32
        ModbusPoint("i16", "holding_register", 303, "int16"),  # after a 1-register gap
        ModbusPoint("scaled", "holding_register", 304, "int16", scale=0.5),
        ModbusPoint("swapped", "holding_register", 305, "uint32", word_order="little"),
        ModbusPoint("flag", "holding_register", 307, "bool"),
        ModbusPoint("text", "holding_register", 308, "string", length=2),
        ModbusPoint("f64", "holding_register", 312, "float64"),  # after a 2-register gap
        ModbusPoint("u64", "holding_register", 314, "uint64"),  # overlaps f64
    ]
    registers = [0x4049, 0x0FDB, 7, 0xFFFE, 0xFFF6, 0x5678, 0x1234, 1, 0x4F4B, 0x2100]
    registers += [0, 0, 0x3FF0, 0, 0, 0, 0, 0]
    plc.set_raw("holding_register", 300, registers)
    driver, _ = await make_driver(plc.port, layouts)
    plc.store.journal.clear()

    got = {s.point: s.value for s in await driver.read([p.name for p in layouts])}

    assert reads(plc) == [(3, 300, 18)]
    assert got["f32"] == pytest.approx(math.pi, rel=1e-7)
    assert got["hi_word"] == 0x4049
    assert got["i16"] == -2
    assert got["scaled"] == -5.0
    assert got["swapped"] == 0x12345678
    assert got["flag"] is True
    assert got["text"] == "OK!"
    assert got["f64"] == 1.0
    assert got["u64"] == 0  # registers 314..317


async def test_nan_and_infinity_from_the_device_are_bad(plc, make_driver) -> None:
    points = [
        ModbusPoint("plain_nan", "holding_register", 400, "float32"),
        ModbusPoint("plain_ok", "holding_register", 402, "float32"),
        ModbusPoint("swapped_inf", "holding_register", 404, "float32", word_order="little"),
        ModbusPoint("swapped_ok", "holding_register", 406, "float32", word_order="little"),
        ModbusPoint("f64_inf", "holding_register", 408, "float64"),
    ]
    plc.set_raw("holding_register", 400, [0x7FC0, 0, 0x3F80, 0, 0, 0x7F80, 0, 0x4000])
    plc.set_raw("holding_register", 408, [0xFFF0, 0, 0, 0])
    driver, _ = await make_driver(plc.port, points)

    got = {s.point: s for s in await driver.read([p.name for p in points])}

    assert got["plain_ok"].good and got["plain_ok"].value == 1.0
    assert got["swapped_ok"].good and got["swapped_ok"].value == 2.0
    assert got["plain_nan"].quality is Quality.BAD
    assert got["plain_nan"].reason == "device value is not a finite number (nan)"
    assert got["swapped_inf"].reason == "device value is not a finite number (inf)"
    assert got["f64_inf"].reason == "device value is not a finite number (-inf)"


async def test_write_coil_uses_fc5_and_returns_the_read_back(plc, make_driver) -> None:
    driver, _ = await make_driver(plc.port, SKID)
    plc.store.journal.clear()

    sample = await driver.write("FEED_PUMP", True)

    assert sample.point == "FEED_PUMP" and sample.good and sample.value is True
    assert plc.get("FEED_PUMP") is True
    assert plc.get("PUMP_RUNNING") is True
    assert list(plc.store.journal) == [(5, 0, 1), (1, 0, 1)]


async def test_write_coil_multiple_uses_fc15(plc, make_driver) -> None:
    driver, _ = await make_driver(plc.port, SKID)
    plc.store.journal.clear()

    sample = await driver.write("HARVEST_VALVE", 1)

    assert sample.value is True and plc.get("VALVE_OPEN") is True
    assert list(plc.store.journal) == [(15, 1, 1), (1, 1, 1)]


async def test_write_register_single_uses_fc6(plc, make_driver) -> None:
    driver, _ = await make_driver(plc.port, SKID)
    plc.store.journal.clear()

    sample = await driver.write("STAGE", 4)

    assert sample.value == 4 and plc.get("STAGE") == 4
    assert list(plc.store.journal) == [(6, 10, 1), (3, 10, 1)]


async def test_write_float_and_string_use_fc16(plc, make_driver) -> None:
    driver, _ = await make_driver(plc.port, SKID)
    plc.store.journal.clear()

    temp = await driver.write("TEMP_SP", 38.2)
    batch = await driver.write("BATCH_ID", "LOT-7")

    assert temp.value == pytest.approx(38.2, abs=1e-5)  # float32 holds the nearest value
    assert plc.get("TEMP_SP") == temp.value
    assert batch.value == "LOT-7" and plc.get("BATCH_ID") == "LOT-7"
    assert list(plc.store.journal) == [(16, 0, 2), (3, 0, 2), (16, 12, 8), (3, 12, 8)]


async def test_write_refused_by_the_device_raises_device_refused(plc, make_driver) -> None:
    points = [*SKID, ModbusPoint("NOWHERE", "holding_register", 600, writable=True)]
    driver, _ = await make_driver(plc.port, points)

    with pytest.raises(DeviceRefused, match=r"Modbus exception 3 \(ILLEGAL DATA VALUE\)"):
        await driver.write("TEMP_SP", 90.0)
    with pytest.raises(DeviceRefused, match=r"Modbus exception 2 \(ILLEGAL DATA ADDRESS\)"):
        await driver.write("NOWHERE", 1)
    assert plc.get("TEMP_SP") == 37.0
    assert driver.link_state is LinkState.UP


async def test_write_undone_by_the_plc_raises_write_not_confirmed(plc, make_driver) -> None:
    plc.inject_fault("ESTOP")
    driver, _ = await make_driver(plc.port, SKID)

    with pytest.raises(WriteNotConfirmed, match="wrote True but read back False"):
        await driver.write("FEED_PUMP", True)


async def test_write_with_a_short_read_back_is_not_confirmed(plc, make_driver) -> None:
    driver, _ = await make_driver(plc.port, SKID)
    plc.short_reply("holding_register", 10, 10, drop=1)

    with pytest.raises(WriteNotConfirmed, match="short reply: asked 1 registers, got 0"):
        await driver.write("STAGE", 2)
    assert plc.get("STAGE") == 2


@pytest.mark.parametrize(
    ("point", "value", "message"),
    [
        ("NO_SUCH", 1, "has no point 'NO_SUCH'"),
        ("TEMP_PV", 1.0, "TEMP_PV is not writable"),
        ("ESTOP", True, "ESTOP is not writable"),
        ("STAGE", 70000, r"out of range for uint16"),
        ("STAGE", "three", "uint16 needs a number"),
        ("TEMP_SP", math.nan, "cannot be written"),
        ("BATCH_ID", "X" * 17, "17 bytes does not fit 8 registers"),
        ("FEED_PUMP", 2, "bool needs True/False or 0/1"),
    ],
)
async def test_write_misuse_raises_point_error(plc, make_driver, point, value, message) -> None:
    driver, _ = await make_driver(plc.port, SKID)
    plc.store.journal.clear()

    with pytest.raises(PointError, match=message):
        await driver.write(point, value)
    assert not [e for e in plc.store.journal if e[0] in (5, 6, 15, 16)]


async def test_read_of_unknown_point_raises_point_error(plc, make_driver) -> None:
    driver, _ = await make_driver(plc.port, SKID)
    with pytest.raises(PointError, match="has no point 'FOO'"):
        await driver.read(["TEMP_PV", "FOO"])


async def test_exception_reply_turns_only_the_refused_points_bad(plc, make_driver) -> None:
    points = [
        *SKID,
        ModbusPoint("BEYOND", "holding_register", 600),
        ModbusPoint("BEYOND_COIL", "coil", 40, "bool"),
    ]
    names = [p.name for p in points]
    driver, log = await make_driver(plc.port, points)
    plc.store.journal.clear()

    first = {s.point: s for s in await driver.read(names)}
    second = {s.point: s for s in await driver.read(names)}

    for samples in (first, second):
        for name in ("BEYOND", "BEYOND_COIL"):
            assert samples[name].quality is Quality.BAD
            assert samples[name].value is None
            assert samples[name].reason == "Modbus exception 2 (ILLEGAL DATA ADDRESS)"
        assert all(samples[n].good for n in NAMES)
    assert driver.link_state is LinkState.UP and log.states == [LinkState.UP]
    # Coils 0, 1 and 40 were joined into one request that the PLC refused; after
    # that the coils are read apart, and the refused request is not repeated.
    assert reads(plc).count((1, 0, 41)) == 1
    assert reads(plc).count((1, 0, 2)) == 2
    assert reads(plc).count((1, 40, 1)) == 2


async def test_short_register_reply_turns_that_block_bad(plc, make_driver) -> None:
    spare = [ModbusPoint(f"S{i}", "holding_register", 100 + i) for i in range(10)]
    driver, _ = await make_driver(plc.port, [*SKID, *spare])
    plc.short_reply("holding_register", 100, 109, drop=4)

    samples = {s.point: s for s in await driver.read([*NAMES, *(p.name for p in spare)])}

    for p in spare:
        assert samples[p.name].quality is Quality.BAD
        assert samples[p.name].reason == "short reply: asked 10 registers, got 6"
    assert all(samples[n].good for n in NAMES)
    plc.clear_short_reply()
    assert all(s.good for s in await driver.read([p.name for p in spare]))


async def test_short_bit_reply_turns_that_block_bad(plc, make_driver) -> None:
    coils = [ModbusPoint(f"C{i}", "coil", 10 + i, "bool") for i in range(10)]
    driver, _ = await make_driver(plc.port, [*SKID, *coils], max_bit_gap=4)
    plc.short_reply("coil", 10, 19, drop=8)

    samples = {s.point: s for s in await driver.read([*NAMES, *(p.name for p in coils)])}

    assert {samples[p.name].reason for p in coils} == {"short reply: asked 10 bits, got 8"}
    assert all(samples[n].good for n in NAMES)


async def test_unit_the_device_does_not_own_times_out_without_hanging(plc, make_driver) -> None:
    begin = time.monotonic()
    driver, log = await make_driver(plc.port, SKID, device_id=2)

    assert time.monotonic() - begin < 2.0
    assert driver.link_state is LinkState.DOWN
    assert log.states == [LinkState.DOWN]
    reason = f"link down: no answer from unit 2 at 127.0.0.1:{plc.port} within 0.3 s"
    assert log.events[0][1] == reason
    begin = time.monotonic()
    samples = await driver.read(NAMES)
    assert time.monotonic() - begin < 0.1
    assert {(s.quality, s.reason) for s in samples} == {(Quality.BAD, reason)}
    with pytest.raises(LinkDown, match="no answer from unit 2"):
        await driver.write("TEMP_SP", 30.0)


async def test_unit_behind_a_gateway_answers_exception_11(make_driver) -> None:
    async with BioreactorPLC(port=0, unknown_unit="exception") as plc:
        driver, log = await make_driver(plc.port, SKID, device_id=2)
        samples = await driver.read(NAMES)
    assert log.states == [LinkState.UP]
    assert {s.reason for s in samples} == {
        "Modbus exception 11 (GATEWAY TARGET DEVICE FAILED TO RESPOND)"
    }


async def test_killed_server_turns_every_point_bad_and_reconnects_on_restart(
    make_driver, fast_sleep, eventually
) -> None:
    plc = BioreactorPLC(port=0)
    await plc.start()
    port = plc.port
    driver, log = await make_driver(port, SKID, reconnect_initial=0.5, reconnect_max=4.0)
    assert all(s.good for s in await driver.read(["TEMP_PV", "STAGE"]))

    await plc.stop()
    samples = await driver.read(["TEMP_PV", "STAGE"])

    assert driver.link_state is LinkState.DOWN
    assert log.states == [LinkState.UP, LinkState.DOWN]
    assert log.events[1][1].startswith("link down: ")
    assert all(s.quality is Quality.BAD and s.reason.startswith("link down") for s in samples)
    last = driver.last_samples()
    assert set(last) == set(NAMES)
    assert all(s.quality is Quality.BAD and s.reason.startswith("link down") for s in last.values())
    await eventually(lambda: len(fast_sleep.delays) >= 6, what="six reconnect attempts")
    assert fast_sleep.delays[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert driver.link_state is LinkState.DOWN

    async with BioreactorPLC(port=port) as again:
        again.set("TEMP_PV", 31.0)
        await eventually(lambda: driver.link_state is LinkState.UP, what="link up again")
        assert log.states == [LinkState.UP, LinkState.DOWN, LinkState.UP]
        samples = await driver.read(["TEMP_PV", "STAGE"])
        assert all(s.good for s in samples)
        assert samples[0].value == 31.0


async def test_start_without_a_device_is_down_then_comes_up(make_driver, eventually) -> None:
    async with BioreactorPLC(port=0) as probe:
        port = probe.port
    driver, log = await make_driver(port, SKID)
    assert driver.link_state is LinkState.DOWN
    assert log.events == [(LinkState.DOWN, f"link down: cannot connect to 127.0.0.1:{port}")]
    assert (await driver.read(["TEMP_PV"]))[0].reason.startswith("link down: cannot connect")

    async with BioreactorPLC(port=port):
        await eventually(lambda: driver.link_state is LinkState.UP, what="link up")
        assert (await driver.read(["TEMP_PV"]))[0].value == 20.0


async def test_a_failing_link_callback_does_not_stop_the_driver(plc, make_driver) -> None:
    driver = ModbusDriver("skid", SKID, ModbusSettings(port=plc.port, timeout=0.3))

    def broken(state: LinkState, reason: str) -> None:
        raise RuntimeError("subscriber bug")

    seen: list[LinkState] = []
    driver.on_link_change(broken)
    driver.on_link_change(lambda state, reason: seen.append(state))
    await driver.start()
    try:
        assert seen == [LinkState.UP]
        assert (await driver.read(["STAGE"]))[0].good
    finally:
        await driver.stop()


async def test_rtu_framing_over_tcp(make_driver) -> None:
    async with BioreactorPLC(port=0, framer="rtu") as plc:
        driver, _ = await make_driver(plc.port, SKID, framer="rtu")
        samples = await driver.read(NAMES)
        assert all(s.good for s in samples), samples
        assert (await driver.write("TEMP_SP", 30.5)).value == 30.5


async def test_rtu_serial_through_a_pyserial_socket_url(make_driver) -> None:
    async with BioreactorPLC(port=0, framer="rtu") as plc:
        serial = SerialSettings(f"socket://127.0.0.1:{plc.port}")
        driver, _ = await make_driver(plc.port, SKID, serial=serial)
        assert all(s.good for s in await driver.read(NAMES))


async def test_stop_ends_reconnecting(make_driver, fast_sleep, eventually) -> None:
    async with BioreactorPLC(port=0) as probe:
        port = probe.port
    driver, _ = await make_driver(port, SKID)
    await eventually(lambda: len(fast_sleep.delays) >= 2, what="reconnecting")
    await driver.stop()
    count = len(fast_sleep.delays)
    await asyncio.sleep(0.05)
    assert len(fast_sleep.delays) == count
    assert driver.link_state is LinkState.DOWN
