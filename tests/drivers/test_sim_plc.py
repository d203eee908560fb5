"""The simulated bioreactor PLC, seen through a plain pymodbus client on 127.0.0.1."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from drivers.codec import Format, decode, encode
from drivers.sim.plc import (
    ENTRIES,
    FAULTS,
    REGISTER_MAP,
    BioreactorPLC,
    register_map_markdown,
)

pytestmark = pytest.mark.timeout(20)
F32 = Format("float32")
DOC = Path(__file__).resolve().parents[2] / "docs" / "sim-plant-modbus.md"


def connect_to(plc: BioreactorPLC) -> AsyncModbusTcpClient:
    return AsyncModbusTcpClient(
        "127.0.0.1", port=plc.port, timeout=0.3, retries=0, reconnect_delay=0
    )


@pytest.fixture
async def client(plc: BioreactorPLC) -> AsyncIterator[AsyncModbusTcpClient]:
    c = connect_to(plc)
    assert await c.connect()
    yield c
    c.close()


async def read_f32(client: AsyncModbusTcpClient, name: str) -> float:
    e = ENTRIES[name]
    if e.table == "input_register":
        rr = await client.read_input_registers(e.address, count=2, device_id=1)
    else:
        rr = await client.read_holding_registers(e.address, count=2, device_id=1)
    assert not rr.isError(), rr
    value = decode(F32, rr.registers)
    assert isinstance(value, float)
    return value


async def write_f32(client: AsyncModbusTcpClient, name: str, value: float) -> None:
    rr = await client.write_registers(ENTRIES[name].address, encode(F32, value), device_id=1)
    assert not rr.isError(), rr


async def read_di(client: AsyncModbusTcpClient, name: str) -> bool:
    rr = await client.read_discrete_inputs(ENTRIES[name].address, count=1, device_id=1)
    assert not rr.isError(), rr
    return bool(rr.bits[0])


async def test_temperature_follows_its_setpoint_with_a_first_order_lag(plc, client) -> None:
    assert await read_f32(client, "TEMP_PV") == 20.0
    await write_f32(client, "TEMP_SP", 40.0)

    plc.step(60.0)  # one time constant: 63.2 % of the way
    one_tau = await read_f32(client, "TEMP_PV")
    for _ in range(10):
        plc.step(60.0)
    settled = await read_f32(client, "TEMP_PV")

    assert one_tau == pytest.approx(20.0 + 20.0 * (1 - math.exp(-1)), abs=1e-4)
    assert settled == pytest.approx(40.0, abs=0.01)


async def test_new_setpoint_moves_ph_and_time_constants_are_configurable() -> None:
    async with BioreactorPLC(port=0, time_constants={"PH": 10.0}) as fast:
        c = connect_to(fast)
        assert await c.connect()
        try:
            await write_f32(c, "PH_SP", 6.5)
            fast.step(10.0)
            assert await read_f32(c, "PH_PV") == pytest.approx(
                7.2 - 0.7 * (1 - math.exp(-1)), abs=1e-4
            )
        finally:
            c.close()


async def test_agitation_needs_the_run_command_and_drives_dissolved_oxygen(plc, client) -> None:
    for _ in range(20):
        plc.step(5.0)
    assert await read_f32(client, "AGIT_PV") == 0.0
    assert await read_f32(client, "DO_PV") < 5.0  # no agitation, no oxygen transfer

    assert not (await client.write_coil(2, True, device_id=1)).isError()
    for _ in range(60):
        plc.step(5.0)

    assert await read_f32(client, "AGIT_PV") == pytest.approx(150.0, abs=0.1)
    assert await read_f32(client, "DO_PV") == pytest.approx(40.0, abs=0.1)


async def test_feed_pump_feeds_and_harvest_valve_drains(plc, client) -> None:
    assert not (await client.write_coil(0, True, device_id=1)).isError()
    assert await read_di(client, "PUMP_RUNNING") is True
    for _ in range(30):
        plc.step(60.0)
    assert await read_f32(client, "FEED_FLOW_PV") == pytest.approx(5.0, abs=0.01)
    fed = await read_f32(client, "VOLUME_PV")
    assert fed == pytest.approx(50.0 + 5.0 * 0.5, abs=0.05)  # 30 min at 5 L/h

    assert not (await client.write_coils(0, [False, True], device_id=1)).isError()
    assert await read_di(client, "VALVE_OPEN") is True
    for _ in range(30):
        plc.step(60.0)
    assert await read_f32(client, "VOLUME_PV") < fed - 9.0  # 20 L/h out, feed runs down


async def test_injected_faults_show_on_inputs_and_change_the_process(plc, client) -> None:
    assert not (await client.write_coil(0, True, device_id=1)).isError()
    for _ in range(10):
        plc.step(60.0)
    warm = await read_f32(client, "TEMP_PV")
    ph = await read_f32(client, "PH_PV")

    plc.inject_fault("HEATER_FAULT")
    plc.inject_fault("PUMP_FAULT")
    plc.inject_fault("PH_PROBE_FAULT")
    await write_f32(client, "PH_SP", 6.0)
    for _ in range(10):
        plc.step(60.0)

    assert await read_di(client, "HEATER_FAULT") is True
    assert await read_di(client, "PUMP_RUNNING") is False
    word = (await client.read_input_registers(14, count=1, device_id=1)).registers[0]
    assert word == 0b10011
    assert await read_f32(client, "TEMP_PV") < warm - 10.0  # drifting to ambient
    assert await read_f32(client, "FEED_FLOW_PV") < 0.01
    assert await read_f32(client, "PH_PV") == ph  # frozen probe

    plc.clear_fault("HEATER_FAULT")
    assert await read_di(client, "HEATER_FAULT") is False


async def test_estop_holds_outputs_off(plc, client) -> None:
    assert not (await client.write_coils(0, [True, True, True], device_id=1)).isError()
    plc.inject_fault("ESTOP")
    assert (await client.read_coils(0, count=3, device_id=1)).bits[:3] == [False] * 3

    assert not (await client.write_coil(0, True, device_id=1)).isError()  # accepted...
    assert (await client.read_coils(0, count=1, device_id=1)).bits[0] is False  # ...and undone


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown fault 'FIRE'"):
        BioreactorPLC().inject_fault("FIRE")
    assert "ESTOP" in FAULTS


async def test_setpoints_out_of_range_are_refused_with_exception_3(plc, client) -> None:
    rr = await client.write_registers(0, encode(F32, 95.0), device_id=1)
    assert rr.isError() and rr.exception_code == 3
    rr = await client.write_register(10, 9, device_id=1)  # STAGE 0..5
    assert rr.isError() and rr.exception_code == 3
    assert plc.get("TEMP_SP") == 37.0 and plc.get("STAGE") == 0


async def test_addresses_beyond_the_tables_answer_exception_2(client) -> None:
    for rr in (
        await client.read_holding_registers(499, count=2, device_id=1),
        await client.read_input_registers(256, count=1, device_id=1),
        await client.read_coils(30, count=3, device_id=1),
        await client.write_register(500, 1, device_id=1),
    ):
        assert rr.isError() and rr.exception_code == 2


async def test_batch_id_string_round_trips(plc, client) -> None:
    fmt = Format("string", length=8)
    assert not (await client.write_registers(12, encode(fmt, "LOT-42"), device_id=1)).isError()
    assert plc.get("BATCH_ID") == "LOT-42"


async def test_only_its_own_unit_is_answered(plc, client) -> None:
    begin = time.monotonic()
    with pytest.raises(ModbusIOException, match="No response"):
        await client.read_holding_registers(0, count=2, device_id=2)
    assert time.monotonic() - begin < 1.0
    assert not (await client.read_holding_registers(0, count=2, device_id=1)).isError()


async def test_gateway_mode_answers_other_units_with_exception_11() -> None:
    async with BioreactorPLC(port=0, unknown_unit="exception") as plc:
        c = connect_to(plc)
        assert await c.connect()
        try:
            rr = await c.read_holding_registers(0, count=2, device_id=7)
        finally:
            c.close()
    assert rr.isError() and rr.exception_code == 11


async def test_short_reply_mode_answers_fewer_registers_for_one_range(plc, client) -> None:
    plc.short_reply("holding_register", 100, 109, drop=4)
    assert len((await client.read_holding_registers(105, count=10, device_id=1)).registers) == 6
    assert len((await client.read_holding_registers(0, count=10, device_id=1)).registers) == 10
    plc.clear_short_reply()
    assert len((await client.read_holding_registers(105, count=10, device_id=1)).registers) == 10


async def test_journal_records_function_codes(plc, client) -> None:
    plc.store.journal.clear()
    await client.read_input_registers(0, count=4, device_id=1)
    await client.write_coil(1, True, device_id=1)
    assert list(plc.store.journal) == [(4, 0, 4), (5, 1, 1)]


async def test_realtime_mode_moves_the_process_by_itself(eventually) -> None:
    async with BioreactorPLC(port=0, realtime=True, tick=0.01, time_constants={"TEMP": 0.5}) as p:
        await eventually(lambda: float(p.get("TEMP_PV")) > 30.0, timeout=5.0, what="warming")
        assert p.sim_time > 0


def test_noise_is_seeded_and_small() -> None:
    a = BioreactorPLC(noise=0.05, seed=7)
    b = BioreactorPLC(noise=0.05, seed=7)
    quiet = BioreactorPLC(noise=0.0)
    for plc in (a, b, quiet):
        for _ in range(5):
            plc.step(1.0)
    assert a.get("TEMP_PV") == b.get("TEMP_PV")
    assert a.get("TEMP_PV") != quiet.get("TEMP_PV")
    assert abs(float(a.get("TEMP_PV")) - float(quiet.get("TEMP_PV"))) < 0.5


async def test_restart_on_the_same_port(plc) -> None:
    port = plc.port
    await plc.stop()
    async with BioreactorPLC(port=port) as again:
        assert again.port == port


def test_register_map_has_no_overlaps_and_the_doc_shows_it() -> None:
    used: dict[tuple[str, int], str] = {}
    for e in REGISTER_MAP:
        for a in range(e.address, e.address + e.count):
            assert (e.table, a) not in used, f"{e.name} overlaps {used[(e.table, a)]}"
            used[(e.table, a)] = e.name
    assert register_map_markdown() in DOC.read_text(encoding="utf-8")
