"""SUP-3 cameras: the OPC UA method camera against the simulated microscope and the
Modbus-triggered drop-folder camera against the simulated skid PLC, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opcua_fixtures import (
    ua_drivers_fixture,  # noqa: F401
    ua_server_fixture,  # noqa: F401
)
from PIL import Image

from drivers.camera import (
    Camera,
    CameraNotAnswering,
    CaptureRefused,
    CaptureTimeout,
    ModbusTriggerCamera,
    NotAnImage,
    OpcUaMethodCamera,
    identify_image,
)
from drivers.modbus import ModbusDriver, ModbusPoint, ModbusSettings
from drivers.sim import microscope as mic
from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import ENTRIES, BioreactorPLC

pytestmark = pytest.mark.timeout(30)
module_loop = pytest.mark.asyncio(loop_scope="module")
TRIGGER = ModbusPoint(
    "CAMERA_TRIGGER", "coil", ENTRIES["CAMERA_TRIGGER"].address, "bool", writable=True
)


def picture(size: tuple[int, int], fmt: str = "PNG", shade: int = 90) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, shade).save(out, format=fmt)
    return out.getvalue()


async def settle(srv: MicroscopeServer, seconds: float) -> None:
    for _ in range(round(seconds / 0.1)):
        await srv.step(0.1)


# -- OPC UA method camera ---------------------------------------------------------------


@module_loop
async def test_opcua_captures_at_different_focus_and_illumination_differ(
    ua_server: MicroscopeServer, ua_drivers
) -> None:
    driver = ua_drivers(ua_server.url)
    await driver.start()
    camera = OpcUaMethodCamera(
        driver, mic.CAMERA, mic.CAPTURE, name="MIC1.Camera", defaults={"ExposureMs": 10.0}
    )
    assert isinstance(camera, Camera)

    blurred = await camera.capture()
    await driver.write("focus", ua_server.best_focus)
    await driver.write("illumination", 90.0)
    await settle(ua_server, 2.0)
    sharp = await camera.capture({"ExposureMs": 12.5})

    for shot in (blurred, sharp):
        assert (shot.format, shot.width, shot.height) == ("png", 320, 240)
        with Image.open(io.BytesIO(shot.image)) as img:
            assert (img.format, img.size) == ("PNG", (320, 240))
        assert shot.camera_time is not None and shot.camera_time.utcoffset() is not None
        assert shot.settings["camera"] == "MIC1.Camera"
    assert blurred.image != sharp.image
    assert blurred.settings["ExposureMs"] == 10.0 and sharp.settings["exposure_ms"] == 12.5
    assert sharp.settings["focus_um"] == pytest.approx(ua_server.best_focus)
    assert sharp.settings["illumination_pct"] == pytest.approx(90.0, abs=0.1)
    assert blurred.settings["focus_um"] != sharp.settings["focus_um"]


@module_loop
async def test_opcua_camera_refusals_are_plain(ua_server: MicroscopeServer, ua_drivers) -> None:
    driver = ua_drivers(ua_server.url)
    camera = OpcUaMethodCamera(driver, mic.CAMERA, mic.CAPTURE, name="MIC1.Camera")

    with pytest.raises(CameraNotAnswering, match=r"camera MIC1\.Camera is not answering"):
        await camera.capture({"ExposureMs": 10.0})
    await driver.start()
    with pytest.raises(CaptureRefused, match="no setting Gain; its settings: ExposureMs"):
        await camera.capture({"Gain": 2})
    with pytest.raises(CaptureRefused, match="needs a value for ExposureMs"):
        await camera.capture()
    with pytest.raises(CaptureRefused, match="BadOutOfRange"):
        await camera.capture({"ExposureMs": -1.0})


# -- Modbus-triggered drop-folder camera ------------------------------------------------


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


@pytest.fixture
async def skid(drop: Path) -> AsyncIterator[tuple[BioreactorPLC, ModbusDriver]]:
    async with BioreactorPLC(port=0, drop_folder=drop) as plc:
        driver = ModbusDriver("skid", [TRIGGER], ModbusSettings(port=plc.port, timeout=0.5))
        await driver.start()
        try:
            yield plc, driver
        finally:
            await driver.stop()


@pytest.fixture
async def silent_skid() -> AsyncIterator[tuple[BioreactorPLC, ModbusDriver]]:
    """A PLC whose camera never writes (no drop folder): the coil is plain memory."""
    async with BioreactorPLC(port=0) as plc:
        driver = ModbusDriver("skid", [TRIGGER], ModbusSettings(port=plc.port, timeout=0.5))
        await driver.start()
        try:
            yield plc, driver
        finally:
            await driver.stop()


async def test_modbus_trigger_camera_picks_up_the_new_file(skid, drop: Path) -> None:
    plc, driver = skid
    camera = ModbusTriggerCamera(driver, "CAMERA_TRIGGER", drop, "*.png", timeout_s=5.0)
    assert isinstance(camera, Camera) and camera.name == "skid.CAMERA_TRIGGER"

    first = await camera.capture()
    plc.set("TEMP_PV", 36.8)
    second = await camera.capture()

    assert [p.name for p in plc.camera.pictures] == [
        first.settings["file"],
        second.settings["file"],
    ]
    for shot, path in zip((first, second), plc.camera.pictures, strict=True):
        assert (shot.format, shot.width, shot.height) == ("png", 160, 120)
        assert shot.image == path.read_bytes()
        assert shot.settings == {"trigger": "CAMERA_TRIGGER", "file": path.name}
        assert shot.camera_time is not None
    assert first.image != second.image
    assert plc.get("CAMERA_TRIGGER") is False
    assert not [p for p in drop.iterdir() if p.name.startswith(".")], "temporary file left"


async def test_files_present_before_the_trigger_are_ignored(skid, drop: Path) -> None:
    plc, driver = skid
    old = drop / "capture-zzz-old.png"
    old.write_bytes(picture((40, 30)))
    future = os.stat(old).st_mtime + 3600
    os.utime(old, (future, future))  # newest by time, still not new
    camera = ModbusTriggerCamera(driver, "CAMERA_TRIGGER", drop, "*.png", timeout_s=5.0)

    shot = await camera.capture()

    assert shot.settings["file"] == plc.camera.pictures[0].name != old.name
    assert (shot.width, shot.height) == (160, 120)


async def test_timeout_when_the_camera_never_writes(silent_skid, drop: Path) -> None:
    plc, driver = silent_skid
    (drop / "earlier.png").write_bytes(picture((20, 20)))
    camera = ModbusTriggerCamera(driver, "CAMERA_TRIGGER", drop, "*.png", timeout_s=0.4)
    journal_before = len(plc.store.journal)

    with pytest.raises(CaptureTimeout) as caught:
        await camera.capture()

    assert str(caught.value) == (
        f"camera skid.CAMERA_TRIGGER wrote no new file matching *.png into {drop} "
        "within 0.4 s of the trigger"
    )
    writes = [fc for fc, _, _ in list(plc.store.journal)[journal_before:] if fc == 5]
    assert writes == [5, 5], "set the trigger, then reset it after the timeout"
    assert plc.get("CAMERA_TRIGGER") is False


async def test_busy_trigger_and_missing_folder_are_refused_plainly(
    silent_skid, tmp_path: Path
) -> None:
    plc, driver = silent_skid
    camera = ModbusTriggerCamera(driver, "CAMERA_TRIGGER", tmp_path / "nowhere", timeout_s=1)
    with pytest.raises(CameraNotAnswering, match=r"drop folder .*nowhere does not exist"):
        await camera.capture()

    plc.set("CAMERA_TRIGGER", True)
    camera = ModbusTriggerCamera(driver, "CAMERA_TRIGGER", tmp_path, timeout_s=1)
    with pytest.raises(CaptureRefused, match="busy: trigger CAMERA_TRIGGER is still set"):
        await camera.capture()
    with pytest.raises(CaptureRefused, match="takes no settings"):
        await camera.capture({"ExposureMs": 5})


async def _slow_writer(plc: BioreactorPLC, target: Path, parts: list[bytes], pause: float) -> None:
    """A camera that writes its file in place, in pieces, once the coil is set."""
    while not plc.get("CAMERA_TRIGGER"):
        await asyncio.sleep(0.01)
    with target.open("wb") as out:
        for part in parts:
            out.write(part)
            out.flush()
            await asyncio.sleep(pause)
    plc.set("CAMERA_TRIGGER", False)


async def test_a_file_written_in_place_is_read_only_when_complete(silent_skid, drop: Path) -> None:
    plc, driver = silent_skid
    data = picture((64, 48), shade=200)
    half = len(data) // 2
    writer = asyncio.create_task(
        _slow_writer(plc, drop / "img.png", [data[:half], data[half:]], 0.3)
    )
    camera = ModbusTriggerCamera(driver, "CAMERA_TRIGGER", drop, timeout_s=5.0, settle_s=0.05)

    shot = await camera.capture()
    await writer

    assert shot.image == data and (shot.width, shot.height) == (64, 48)


async def test_a_file_that_is_not_an_image_is_reported_as_such(silent_skid, drop: Path) -> None:
    plc, driver = silent_skid
    writer = asyncio.create_task(_slow_writer(plc, drop / "img.png", [b"not a picture"], 0.0))
    camera = ModbusTriggerCamera(driver, "CAMERA_TRIGGER", drop, timeout_s=0.5, settle_s=0.05)

    with pytest.raises(NotAnImage, match=r"img\.png .* is not a PNG or TIFF image"):
        await camera.capture()
    await writer


# -- image identification -----------------------------------------------------------------


def test_identify_image_reads_png_and_tiff_and_refuses_the_rest() -> None:
    assert identify_image(picture((7, 5))) == ("png", 7, 5)
    assert identify_image(picture((9, 4), "TIFF")) == ("tiff", 9, 4)
    with pytest.raises(NotAnImage, match="is a JPEG file; only PNG and TIFF"):
        identify_image(picture((8, 8), "JPEG"))
    with pytest.raises(NotAnImage, match="incomplete or damaged"):
        identify_image(picture((50, 50))[:-30])
    with pytest.raises(NotAnImage, match="is empty"):
        identify_image(b"")
