"""Alarms in the running runtime on the simulated plant: process, communication and system
alarms reach the journal, and the records verify afterwards (SUP-6)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from custos_testkit import ADMIN_TEMP, ORIGIN, demo_config, until

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.bootstrap import init_data_dir
from hmi.core.alarms import AlarmState
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(90)


def journal(runtime: Runtime, alarm_id: str) -> list[tuple[object, ...]]:
    assert runtime.services is not None
    return runtime.services.store.query(
        "SELECT event, to_state, actor_id FROM alarm_journal WHERE alarm_id = ? ORDER BY seq",
        [alarm_id],
    )


async def test_process_and_communication_alarms_are_journaled(tmp_path: Path) -> None:
    async with MicroscopeServer(host="127.0.0.1", port=0) as mic:
        plc = BioreactorPLC(host="127.0.0.1", port=0)
        await plc.__aenter__()
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        data = tmp_path / "data"
        (await init_data_dir(data, config, "admin1", "Ada", ADMIN_TEMP, ORIGIN)).close()
        async with Runtime(data, config) as runtime:
            assert runtime.alarms is not None and runtime.plant is not None
            alarms = runtime.alarms
            table = runtime.plant.table
            await until(lambda: table.get("BR101.HEATER_FAULT").quality.value == "GOOD", what="up")
            plc.set("HEATER_FAULT", True)
            await until(
                lambda: alarms.get("BR101.HEATER_FAULT").state is AlarmState.UNACK_ACTIVE,
                what="heater fault alarm",
            )
            await until(lambda: journal(runtime, "BR101.HEATER_FAULT"), what="journal row")
            assert journal(runtime, "BR101.HEATER_FAULT")[0] == (
                "activate",
                "UNACK_ACTIVE",
                "device:PLC1",
            )
            await plc.__aexit__(None, None, None)
            await until(
                lambda: (
                    alarms.alarms.get("COMM.PLC1") is not None
                    and alarms.get("COMM.PLC1").state is AlarmState.UNACK_ACTIVE
                ),
                what="communication alarm",
            )
            await until(lambda: journal(runtime, "COMM.PLC1"), what="comm journal row")
    assert verify_data_dir(data).ok


async def test_a_failed_startup_check_raises_a_system_alarm(tmp_path: Path) -> None:
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0) as mic,
    ):
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        data = tmp_path / "data"
        (await init_data_dir(data, config, "admin1", "Ada", ADMIN_TEMP, ORIGIN)).close()
        con = duckdb.connect(str(data / "hmi.duckdb"))
        con.execute("DROP TRIGGER audit_records_no_update ON audit_records")
        con.execute("UPDATE audit_records SET reason = 'edited' WHERE seq = 1")
        con.close()
        async with Runtime(data, config) as runtime:
            assert runtime.alarms is not None
            alarm = runtime.alarms.get("SYSTEM.integrity_check_failed")
            assert (alarm.state, alarm.priority) == (AlarmState.UNACK_ACTIVE, 1)
            assert alarm.priority_label == "!!!! P1"
            await until(
                lambda: journal(runtime, "SYSTEM.integrity_check_failed"), what="journal row"
            )
