"""Cameras from cameras.toml on the running plant (SUP-3): both kinds capture through the
plant's own drivers, each capture is stored write-once and recorded, and the records verify."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from custos_testkit import ADMIN_TEMP, CHEAP_SECURITY, ORIGIN, until

from drivers.base import LinkState
from drivers.camera import CaptureRefused
from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.bootstrap import init_data_dir
from hmi.records.images import record_capture
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(90)

DEVICES = """
[[device]]
name = "PLC1"
kind = "modbus"
host = "127.0.0.1"
port = {modbus_port}
reconnect_max_s = 2.0

[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "{opcua_url}"
reconnect_max_s = 2.0
"""

TAGS = """
[[tag]]
name = "BR101.TEMP_PV"
device = "PLC1"
address = "ir:0"
type = "float32"
scan_class = "fast"

[[tag]]
name = "MIC1.Focus"
device = "MIC1"
address = "ns=2;s=MIC1.Focus"
type = "float64"
"""

CAMERAS = """
[[camera]]
name = "MIC1.CAM"
kind = "opcua_method"
device = "MIC1"
area = "imaging"
equipment = "MIC1"
object_id = "ns=2;s=MIC1.Camera"
method_id = "ns=2;s=MIC1.Camera.Capture"

[[camera.setting]]
name = "ExposureMs"
default = 10.0
low = 0.1
high = 1000.0
units = "ms"

[[camera]]
name = "BR101.CAM"
kind = "modbus_trigger"
device = "PLC1"
area = "bioreactor"
equipment = "BR101"
esign = "double"
trigger = "coil:8"
drop_folder = "drop"
timeout_s = 10.0
settle_s = 0.05
"""


def write_config(directory: Path, modbus_port: int, opcua_url: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "plant.toml").write_text('[plant]\nname = "Camera plant"\n')
    (directory / "security.toml").write_text(CHEAP_SECURITY)
    devices = DEVICES.format(modbus_port=modbus_port, opcua_url=opcua_url)
    (directory / "devices.toml").write_text(devices)
    (directory / "tags.toml").write_text(TAGS)
    (directory / "cameras.toml").write_text(CAMERAS)
    return directory


async def test_both_configured_cameras_capture_on_the_running_plant_and_the_records_verify(
    tmp_path: Path,
) -> None:
    config_dir = tmp_path / "config"
    drop = config_dir / "drop"
    drop.mkdir(parents=True)
    data = tmp_path / "data"
    async with (
        BioreactorPLC(host="127.0.0.1", port=0, drop_folder=drop) as plc,
        MicroscopeServer(host="127.0.0.1", port=0) as mic,
    ):
        write_config(config_dir, plc.port, mic.url)
        (await init_data_dir(data, config_dir, "admin1", "Ada", ADMIN_TEMP, ORIGIN)).close()
        async with Runtime(data, config_dir) as runtime:
            plant = runtime.plant
            assert plant is not None
            assert set(plant.cameras) == {"MIC1.CAM", "BR101.CAM"}
            assert "coil:8" in plant.drivers["PLC1"].points  # type: ignore[attr-defined]
            await until(
                lambda: all(d.link_state is LinkState.UP for d in plant.drivers.values()),
                what="both devices connected",
            )
            microscope, skid = plant.cameras["MIC1.CAM"], plant.cameras["BR101.CAM"]

            with pytest.raises(CaptureRefused, match=r"ExposureMs 5000 ms is above its limit"):
                await microscope.capture({"ExposureMs": 5000.0})
            with pytest.raises(CaptureRefused, match="has no setting Gain"):
                await microscope.capture({"Gain": 2})
            with pytest.raises(CaptureRefused, match="takes no settings"):
                await skid.capture({"ExposureMs": 5.0})
            assert mic.state.capture_count == 0 and not plc.camera.pictures  # type: ignore[union-attr]

            shots = [await microscope.capture({"ExposureMs": 20.0}), await skid.capture()]
            assert shots[0].settings["ExposureMs"] == 20.0
            assert shots[1].settings["file"] == plc.camera.pictures[0].name  # type: ignore[union-attr]
            assert plc.get("CAMERA_TRIGGER") is False
            store = runtime.services.store
            records = [
                await asyncio.to_thread(record_capture, store, shot, camera, actor_id="admin1")
                for shot, camera in zip(shots, (microscope, skid), strict=True)
            ]
            rows = await asyncio.to_thread(
                store.query,
                "SELECT camera, format, width, height, size_bytes, settings, image_file "
                "FROM captures ORDER BY seq",
            )

    assert [r[:4] for r in rows] == [
        ("MIC1.CAM", "png", 320, 240),
        ("BR101.CAM", "png", 160, 120),
    ]
    for row, shot, rec in zip(rows, shots, records, strict=True):
        assert row[4] == len(shot.image) == rec.size
        assert (data / row[6]).read_bytes() == shot.image == rec.path.read_bytes()
    assert json.loads(rows[0][5])["exposure_ms"] == 20.0
    assert json.loads(rows[1][5])["trigger"] == "coil:8"
    report = verify_data_dir(data)
    assert report.ok, report.problems
    assert report.rows["capture_records"] == 2
