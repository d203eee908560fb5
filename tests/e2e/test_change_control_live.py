"""Approved configuration applied to the running plant without a restart where safe
(SUP-12, ISA-18.2): alarm definitions merge into the live alarm engine, tag fields no
driver uses take effect at once, and whatever needs the drivers to reconnect waits for
the restart with a system alarm naming the files."""

from __future__ import annotations

import asyncio

import pytest
from custos_plant import CONSOLE, QA_DESK, ApiPlant, signed
from custos_testkit import PLANT_PASSWORD, until
from test_change_control_runtime import engineer

from hmi.core.alarms import AlarmEngine, AlarmState
from hmi.core.api import SetpointRequest
from hmi.core.api_types import ConfigRequest
from hmi.core.errors import HmiError

pytestmark = pytest.mark.timeout(120)

S = AlarmState
TEMP_LIMITS = "h = 39.0\nl = 30.0\ndeadband = 0.5\non_delay_s = 5\n"
HEATER = """[[alarm]]
tag = "BR101.HEATER_FAULT"
kind = "discrete"
state = true
priority = 2
message = "Jacket heater fault"
"""


def engine(plant: ApiPlant) -> AlarmEngine:
    assert plant.runtime.alarms is not None
    return plant.runtime.alarms


def journal(plant: ApiPlant, alarm_id: str) -> list[tuple[object, ...]]:
    return plant.query(
        "SELECT event, from_state, to_state, message, source FROM alarm_journal "
        "WHERE alarm_id = ? ORDER BY seq",
        [alarm_id],
    )


async def propose(plant: ApiPlant, name: str, text: str) -> ConfigRequest:
    desk = plant.api.config
    assert desk is not None
    eng = await plant.login("eng1")
    return await desk.submit(eng, CONSOLE, name, text, "change", signed("eng1"))


async def approve(plant: ApiPlant, version: int) -> str:
    desk = plant.api.config
    assert desk is not None
    qa = await plant.login("qa1", QA_DESK)
    done = await desk.approve(qa, QA_DESK, version, "reviewed", signed("qa1"))
    assert done.state == "approved"
    return done.effect


def current(plant: ApiPlant, name: str) -> str:
    desk = plant.api.config
    assert desk is not None and desk.directory is not None
    return (desk.directory / name).read_text()


async def test_alarm_changes_take_effect_at_approval_and_keep_operator_state(
    api_plant: ApiPlant,
) -> None:
    plant, alarms = api_plant, engine(api_plant)
    await engineer(plant)
    op = await plant.login("op1")
    desk = plant.api.alarms
    assert desk is not None
    plant.plc.set("HEATER_FAULT", True)
    plant.plc.set("AGITATOR_TRIP", True)
    plant.plc.set("PUMP_FAULT", True)
    for alarm_id in ("BR101.HEATER_FAULT", "BR101.AGITATOR_TRIP", "BR101.PUMP_FAULT"):
        await until(
            lambda a=alarm_id: alarms.get(a).state is S.UNACK_ACTIVE, what=f"{alarm_id} active"
        )
    await desk.acknowledge(op, CONSOLE, "BR101.AGITATOR_TRIP")
    sup = await plant.login("sup1")
    await desk.shelve(sup, CONSOLE, "BR101.PUMP_FAULT", "known", 30, signed("sup1"))
    temp = alarms.get("BR101.TEMP_PV.H")
    assert temp.state is S.NORMAL and plant.runtime.plant is not None
    now = plant.runtime.plant.table.get("BR101.TEMP_PV")
    assert isinstance(now.value, float) and now.value > 2.0

    text = current(plant, "alarms.toml")
    assert TEMP_LIMITS in text and HEATER in text
    lowered = "h = 2.0\nl = 1.0\ndeadband = 0.5\non_delay_s = 0\n"
    changed = text.replace(TEMP_LIMITS, lowered).replace(HEATER, "")
    request = await propose(plant, "alarms.toml", changed)
    agitator_rows = len(journal(plant, "BR101.AGITATOR_TRIP"))
    effect = await approve(plant, request.version)

    # At approval, not after a restart: the lowered limit is already exceeded.
    assert effect.startswith("Applied now: alarms") and "At restart" not in effect
    assert "changed BR101.TEMP_PV.H" in effect and "removed BR101.HEATER_FAULT" in effect
    assert alarms.get("BR101.TEMP_PV.H").state is S.UNACK_ACTIVE
    assert alarms.get("BR101.TEMP_PV.H").limit == 2.0
    assert alarms.get("BR101.AGITATOR_TRIP").state is S.ACK_ACTIVE
    assert alarms.get("BR101.PUMP_FAULT").state is S.SHELVED
    assert "BR101.HEATER_FAULT" not in alarms.alarms
    assert "SYSTEM.config_restart_needed" not in alarms.alarms

    await until(lambda: journal(plant, "BR101.TEMP_PV.H"), what="activation journaled")
    event, from_state, to_state, _, source = journal(plant, "BR101.TEMP_PV.H")[-1]
    assert (event, from_state, to_state) == ("activate", "NORMAL", "UNACK_ACTIVE")
    assert source == f"config:version {request.version}"
    await until(
        lambda: journal(plant, "BR101.HEATER_FAULT")[-1][0] == "removed_by_config",
        what="removal journaled",
    )
    event, from_state, to_state, message, _ = journal(plant, "BR101.HEATER_FAULT")[-1]
    assert (from_state, to_state) == ("UNACK_ACTIVE", "NORMAL")
    assert f"removed by configuration version {request.version}" in str(message)
    assert len(journal(plant, "BR101.AGITATOR_TRIP")) == agitator_rows
    [(detail,)] = plant.query(
        "SELECT detail FROM audit_trail WHERE action = 'config_version_applied'"
    )
    assert "removed BR101.HEATER_FAULT" in detail and "changed BR101.TEMP_PV.H" in detail

    plant.plc.set("HEATER_FAULT", False)  # the tag goes on; no alarm follows it any more
    await until(lambda: plant.value("BR101.HEATER_FAULT") is False, what="heater fault clears")
    assert journal(plant, "BR101.HEATER_FAULT")[-1][0] == "removed_by_config"


async def test_tag_metadata_applies_at_once_and_scan_changes_wait(api_plant: ApiPlant) -> None:
    plant, alarms = api_plant, engine(api_plant)
    assert plant.runtime.plant is not None
    table = plant.runtime.plant.table
    await engineer(plant)
    text = current(plant, "tags.toml")
    metadata = text.replace('"Feed pump run command"', '"Feed pump run (P-101)"').replace(
        "low = 4.0\nhigh = 45.0\n", "low = 4.0\nhigh = 38.0\n", 1
    )
    request = await propose(plant, "tags.toml", metadata)
    effect = await approve(plant, request.version)
    assert effect.startswith("Applied now: tag definitions") and "At restart" not in effect
    assert "BR101.FEED_PUMP" in effect and "BR101.TEMP_SP" in effect
    assert table.definition("BR101.FEED_PUMP").description == "Feed pump run (P-101)"
    assert table.definition("BR101.TEMP_SP").high == 38.0
    assert "SYSTEM.config_restart_needed" not in alarms.alarms
    sup = await plant.login("sup1")
    refused = SetpointRequest("BR101.TEMP_SP", 40.0, "warmer", signed("sup1"))
    with pytest.raises(HmiError, match="38"):
        await plant.api.request_write(sup, CONSOLE, refused)

    # An address change needs the driver rebuilt; a command waiting for approval holds the
    # running tags, so it waits for the restart.
    op = await plant.login("op1")
    asked = await plant.api.request_write(
        op, CONSOLE, SetpointRequest("BR101.TEMP_SP", 37.5, "warm up", signed("op1"))
    )
    assert asked.outcome == "pending"
    moved = current(plant, "tags.toml").replace('address = "hr:0"', 'address = "hr:40"', 1)
    request = await propose(plant, "tags.toml", moved)
    effect = await approve(plant, request.version)
    assert effect == "It takes effect at restart: tags.toml (a command is waiting for approval)."
    assert table.definition("BR101.TEMP_SP").address == "hr:0"
    restart = alarms.get("SYSTEM.config_restart_needed")
    assert restart.state is S.UNACK_ACTIVE and "tags.toml" in restart.message

    # A version that changes something else applies now; the address still waits.
    extra = '\n[[alarm]]\ntag = "BR101.VOLUME_PV"\nhh = 95.0\n'
    request = await propose(plant, "alarms.toml", current(plant, "alarms.toml") + extra)
    effect = await approve(plant, request.version)
    assert effect.startswith("Applied now: alarms") and "restart" not in effect, effect
    assert alarms.get("SYSTEM.config_restart_needed").active

    # The next version moves the address back: the running system is the approved
    # configuration again, so the restart alarm clears, on the record.
    back = current(plant, "tags.toml").replace('address = "hr:40"', 'address = "hr:0"', 1)
    request = await propose(plant, "tags.toml", back)
    effect = await approve(plant, request.version)
    assert effect.endswith("no restart is needed."), effect
    assert not alarms.get("SYSTEM.config_restart_needed").active
    assert plant.query(
        "SELECT target FROM audit_trail WHERE action = 'config_restart_not_needed'"
    ) == [(f"config:version {request.version}",)]


NEW_TAG = """
[[tag]]
name = "BR101.TEMP_PV_B"
device = "PLC1"
address = "ir:0"
type = "float32"
units = "°C"
description = "Vessel temperature, second reading"
"""


async def test_a_quiet_plant_rebuilds_its_drivers_for_new_tags_and_devices(
    api_plant: ApiPlant,
) -> None:
    plant, alarms = api_plant, engine(api_plant)
    services = plant.runtime.services
    assert services is not None and plant.runtime.plant is not None
    table, drivers = plant.runtime.plant.table, plant.runtime.plant.drivers
    await engineer(plant)
    eng = await plant.login("eng1")
    files = {f.name: f.text for f in plant.api.config.files(eng)}  # type: ignore[union-attr]
    files["tags.toml"] += NEW_TAG
    files["devices.toml"] = files["devices.toml"].replace("timeout_s = 1.0", "timeout_s = 1.5", 1)
    files["alarms.toml"] += '\n[[alarm]]\ntag = "BR101.TEMP_PV_B"\nl = 1.0\n'
    version = await services.change.submit(
        eng, CONSOLE, files, "second probe", PLANT_PASSWORD, "eng1"
    )
    effect = await approve(plant, version.version)

    assert effect.startswith("Applied now: drivers rebuilt and reconnecting (tags added")
    assert "BR101.TEMP_PV_B" in effect and "alarms added BR101.TEMP_PV_B.L" in effect
    assert "At restart" not in effect and "SYSTEM.config_restart_needed" not in alarms.alarms
    assert plant.runtime.plant.drivers is drivers  # the same map everything holds, refilled
    await until(lambda: table.get("BR101.TEMP_PV_B").quality.value == "GOOD", what="new tag read")
    await until(lambda: table.get("BR101.TEMP_SP").quality.value == "GOOD", what="old tags read")
    assert alarms.get("BR101.TEMP_PV_B.L").state is S.NORMAL
    comm = alarms.alarms.get("COMM.PLC1")
    assert comm is None or comm.state is S.NORMAL  # reconnecting is not a lost link
    [(detail,)] = plant.query(
        "SELECT detail FROM audit_trail WHERE action = 'config_version_applied'"
    )
    assert "tags added BR101.TEMP_PV_B" in detail

    # Commands go to the rebuilt drivers.
    sup = await plant.login("sup1")
    await plant.api.request_write(
        sup,
        CONSOLE,
        SetpointRequest("BR101.FEED_PUMP", True, "feed", signed("sup1"), kind="operate_equipment"),
    )
    await until(lambda: plant.value("BR101.FEED_PUMP") is True, what="written through new driver")


async def test_a_mixed_version_applies_alarms_now_and_names_what_waits(
    api_plant: ApiPlant,
) -> None:
    plant, alarms = api_plant, engine(api_plant)
    services = plant.runtime.services
    assert services is not None and plant.runtime.plant is not None
    await engineer(plant)
    eng = await plant.login("eng1")
    desk = plant.api.config
    assert desk is not None
    files = {f.name: f.text for f in desk.files(eng)}
    files["alarms.toml"] = files["alarms.toml"].replace(
        'message = "Emergency stop pressed"', 'message = "Emergency stop pressed (ES-1)"'
    )
    assert "timeout_s = 1.0\n" in files["devices.toml"]
    files["devices.toml"] = files["devices.toml"].replace(
        "timeout_s = 1.0\n", "timeout_s = 1.5\n", 1
    )
    op = await plant.login("op1")
    asked = await plant.api.request_write(
        op, CONSOLE, SetpointRequest("BR101.TEMP_SP", 37.5, "warm up", signed("op1"))
    )
    assert asked.outcome == "pending"  # it holds the running devices: they wait
    version = await services.change.submit(eng, CONSOLE, files, "mixed", PLANT_PASSWORD, "eng1")
    effect = await approve(plant, version.version)
    assert effect.startswith("Applied now: alarms changed BR101.ESTOP")
    assert effect.endswith("At restart: devices.toml (a command is waiting for approval).")
    assert alarms.get("BR101.ESTOP").message == "Emergency stop pressed (ES-1)"
    restart = alarms.get("SYSTEM.config_restart_needed")
    assert "waiting for a restart: devices.toml" in restart.message
    actions = dict(
        plant.query(
            "SELECT action, detail FROM audit_trail WHERE action IN "
            "('config_version_applied', 'config_version_pending_restart')"
        )
    )
    assert "changed BR101.ESTOP" in actions["config_version_applied"]
    assert "devices.toml" in actions["config_version_pending_restart"]


async def test_drivers_that_cannot_be_built_leave_the_running_ones_and_wait(
    api_plant: ApiPlant, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant, alarms = api_plant, engine(api_plant)
    services = plant.runtime.services
    assert services is not None and plant.runtime.plant is not None
    drivers = dict(plant.runtime.plant.drivers)
    monkeypatch.delenv("CUSTOS_TEST_MIC_PASSWORD", raising=False)
    await engineer(plant)
    eng = await plant.login("eng1")
    files = {f.name: f.text for f in plant.api.config.files(eng)}  # type: ignore[union-attr]
    files["devices.toml"] = files["devices.toml"].replace(
        'security_mode = "None"\n',
        'security_mode = "None"\nusername = "scope"\npassword_env = "CUSTOS_TEST_MIC_PASSWORD"\n',
        1,
    )
    version = await services.change.submit(eng, CONSOLE, files, "login", PLANT_PASSWORD, "eng1")
    assert version.state == "approved"  # devices.toml needs no QA approval by default
    effect = version.effect

    assert effect == (
        "It takes effect at restart: devices.toml (the drivers could not be rebuilt now "
        "(see the log))."
    ), effect
    assert plant.runtime.plant.drivers == drivers  # the running drivers were left alone
    restart = alarms.get("SYSTEM.config_restart_needed")
    assert restart.active and "devices.toml" in restart.message
    table = plant.runtime.plant.table
    plant.plc.set("TEMP_SP", 36.0)
    await until(lambda: plant.value("BR101.TEMP_SP") == 36.0, what="the PLC is still scanned")
    assert table.get("MIC1.Focus").quality.value == "GOOD"


async def test_a_rebuild_waits_for_the_write_in_flight_and_holds_new_ones(
    api_plant: ApiPlant,
) -> None:
    plant = api_plant
    services, commands = plant.runtime.services, plant.runtime.commands
    assert services is not None and commands is not None
    await engineer(plant)
    eng = await plant.login("eng1")

    async def devices(old: str, new: str) -> str:
        files = {f.name: f.text for f in plant.api.config.files(eng)}  # type: ignore[union-attr]
        assert old in files["devices.toml"]
        files["devices.toml"] = files["devices.toml"].replace(old, new, 1)
        version = await services.change.submit(
            eng, CONSOLE, files, "timeout", PLANT_PASSWORD, "eng1"
        )
        assert version.state == "approved"
        return version.effect

    # Give the PLC time to answer slowly, then let it sit on a write.
    assert (await devices("timeout_s = 1.0\n", "timeout_s = 5.0\n")).startswith("Applied now")
    await until(lambda: plant.value("BR101.TEMP_SP") is not None, what="reconnected")
    sup, op = await plant.login("sup1"), await plant.login("op1")
    plant.plc.hold_writes()
    journal = plant.plc.store.journal
    pump = SetpointRequest(
        "BR101.FEED_PUMP", True, "feed", signed("sup1"), kind="operate_equipment"
    )
    first = asyncio.create_task(plant.api.request_write(sup, CONSOLE, pump))
    await until(lambda: any(fc in (5, 15) for fc, _, _ in journal), what="the write sent")
    rebuild = asyncio.create_task(devices("timeout_s = 5.0\n", "timeout_s = 2.0\n"))
    await until(lambda: commands.driver_gate.held, what="the rebuild waiting for the write")
    agitator = SetpointRequest("BR101.AGIT_SP", 150.0, "stir", signed("op1"))
    second = asyncio.create_task(plant.api.request_write(op, CONSOLE, agitator))
    attempts = "SELECT count(*) FROM audit_trail WHERE outcome = 'attempt'"
    await until(lambda: plant.query(attempts) == [(2,)], what="the second write asked for")
    assert not rebuild.done() and not second.done()

    plant.plc.answer_writes()
    done = await asyncio.wait_for(asyncio.gather(first, rebuild, second), 30)
    assert done[0].outcome == "done" and done[2].outcome == "done"
    assert done[1].startswith("Applied now: drivers rebuilt"), done[1]
    assert plant.plc.get("FEED_PUMP") is True and plant.plc.get("AGIT_SP") == 150.0
    outcomes = plant.query(
        "SELECT target, outcome FROM audit_trail WHERE action IN "
        "('write_setpoint', 'operate_equipment') AND outcome <> 'attempt' ORDER BY seq"
    )
    assert outcomes == [("BR101.FEED_PUMP", "done"), ("BR101.AGIT_SP", "done")]
