"""The runtime on the simulated plant: values flow into chained history, changes made at the
device are flagged, link losses are recorded, and the records verify afterwards (SUP-4, SUP-5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from custos_testkit import ADMIN_TEMP, ORIGIN, demo_config, until

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.bootstrap import init_data_dir
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(90)


async def test_runtime_records_history_unattributed_changes_and_link_loss(tmp_path: Path):
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0) as mic,
    ):
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        data = tmp_path / "data"
        services = await init_data_dir(data, config, "admin1", "Ada", ADMIN_TEMP, ORIGIN)
        services.close()

        runtime = Runtime(data, config)
        await runtime.start()
        try:
            store = runtime.services.store
            table = runtime.plant.table

            def history(tag: str) -> list[tuple]:
                runtime.history.flush()
                return store.query(
                    "SELECT value, quality, actor_id, device, unattributed FROM tag_history "
                    "WHERE tag = ? ORDER BY time",
                    [tag],
                )

            await until(lambda: table.get("BR101.TEMP_SP").quality.value == "GOOD", what="PLC")
            await until(lambda: table.get("MIC1.Focus").quality.value == "GOOD", what="OPC UA")
            await until(lambda: history("BR101.TEMP_SP"), what="setpoint history")
            assert history("BR101.TEMP_SP")[0][2:] == (None, "PLC1", False)

            plc.set("TEMP_SP", 30.0)  # changed at the PLC panel, not by a command
            await until(lambda: any(r[4] for r in history("BR101.TEMP_SP")), what="unattributed")
            await until(
                lambda: store.query(
                    "SELECT target FROM audit_trail WHERE action = 'unattributed_change'"
                ),
                what="unattributed audit row",
            )
        finally:
            await runtime.stop()
    report = verify_data_dir(data)
    assert report.ok, report.problems
    assert report.rows["tag_history_batch_records"] >= 1


async def test_a_dead_device_is_recorded_and_its_tags_turn_bad(tmp_path: Path):
    async with MicroscopeServer(host="127.0.0.1", port=0) as mic:
        plc = BioreactorPLC(host="127.0.0.1", port=0)
        await plc.__aenter__()
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        data = tmp_path / "data"
        (await init_data_dir(data, config, "admin1", "Ada", ADMIN_TEMP, ORIGIN)).close()
        async with Runtime(data, config) as runtime:
            table = runtime.plant.table
            await until(lambda: table.get("BR101.TEMP_PV").quality.value == "GOOD", what="up")
            await plc.__aexit__(None, None, None)
            await until(lambda: table.get("BR101.TEMP_PV").quality.value == "BAD", what="bad")
            assert table.get("BR101.TEMP_PV").reason.startswith("link down")
            await until(
                lambda: runtime.services.store.query(
                    "SELECT target FROM audit_trail WHERE action = 'device_link_down'"
                ),
                what="link down recorded",
            )
    assert verify_data_dir(data).ok
