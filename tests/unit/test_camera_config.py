"""cameras.toml: each problem names file, key path and reason; the plant builds the cameras.

SUP-3: cameras are configured, checked against the devices they use, and
built on the plant's own drivers; a capture cannot send settings the
configuration does not allow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from drivers.camera import CaptureRefused, ModbusTriggerCamera, OpcUaMethodCamera
from hmi.cli import main
from hmi.core.camera_config import (
    CameraSetting,
    ModbusTriggerCameraConfig,
    OpcUaMethodCameraConfig,
)
from hmi.core.config import PlantConfig, load_config
from hmi.core.errors import ConfigError
from hmi.core.plant_config import DEFERRED, ModbusDevice, OpcUaDevice
from hmi.demo import demo_drop_folder
from hmi.plant import ConfiguredCamera, build_cameras, build_drivers, build_plant

pytestmark = pytest.mark.timeout(30)

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo"

DEVICES = """
[[device]]
name = "PLC1"
kind = "modbus"
host = "127.0.0.1"

[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
"""

TAGS = """
[[tag]]
name = "BR101.TEMP_PV"
device = "PLC1"
address = "ir:0"
type = "float32"
"""

MICROSCOPE = {
    "name": "MIC1.CAM",
    "kind": "opcua_method",
    "device": "MIC1",
    "object_id": "ns=2;s=MIC1.Camera",
    "method_id": "ns=2;s=MIC1.Camera.Capture",
}
EXPOSURE = {"name": "ExposureMs", "default": 10.0, "low": 0.1, "high": 1000.0, "units": "ms"}
SKID = {
    "name": "BR101.CAM",
    "kind": "modbus_trigger",
    "device": "PLC1",
    "trigger": "coil:8",
    "drop_folder": "drop",
}


def toml_value(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def camera(
    base: dict[str, object], settings: Sequence[dict[str, object]] = (), **extra: object
) -> str:
    fields = {**base, **extra}
    lines = ["[[camera]]", *(f"{k} = {toml_value(v)}" for k, v in fields.items())]
    for setting in settings:
        lines += ["[[camera.setting]]", *(f"{k} = {toml_value(v)}" for k, v in setting.items())]
    return "\n".join(lines) + "\n\n"


def write(directory: Path, cameras: str, devices: str = DEVICES, tags: str = TAGS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "drop").mkdir(exist_ok=True)
    (directory / "devices.toml").write_text(devices)
    (directory / "tags.toml").write_text(tags)
    (directory / "cameras.toml").write_text(cameras)
    return directory


def problems(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    prefix = f"{directory}/"
    return [line.removeprefix(prefix) for line in caught.value.message.splitlines()]


# -- the demo plant -----------------------------------------------------------------------


def test_demo_cameras_load_with_their_devices_policy_and_an_existing_drop_folder() -> None:
    cfg = load_config(DEMO)
    cameras = {c.name: c for c in cfg.cameras}
    mic, skid = cameras["MIC1.CAM"], cameras["BR101.CAM"]
    assert isinstance(mic, OpcUaMethodCameraConfig) and mic.device == "MIC1"
    assert mic.method_id == "ns=2;s=MIC1.Camera.Capture"
    assert [(s.name, s.default) for s in mic.setting] == [("ExposureMs", 10.0)]
    assert isinstance(skid, ModbusTriggerCameraConfig) and skid.device == "PLC1"
    assert skid.trigger_point() == ("coil", 8, "coil:8")
    assert skid.drop_folder == DEMO / "camera-drop" and skid.drop_folder.is_dir()
    assert (mic.area, mic.equipment, skid.area, skid.equipment) == (
        "imaging", "MIC1", "bioreactor", "BR101",
    )  # fmt: skip
    assert mic.esign == skid.esign == "single"
    assert demo_drop_folder(DEMO) == DEMO / "camera-drop"


def test_demo_plant_builds_both_cameras_on_its_own_drivers() -> None:
    plant = build_plant(load_config(DEMO))
    assert set(plant.cameras) == {"MIC1.CAM", "BR101.CAM"}
    mic, skid = plant.cameras["MIC1.CAM"], plant.cameras["BR101.CAM"]
    assert isinstance(mic, ConfiguredCamera) and isinstance(mic.camera, OpcUaMethodCamera)
    assert isinstance(skid, ConfiguredCamera) and isinstance(skid.camera, ModbusTriggerCamera)
    assert mic.camera._driver is plant.drivers["MIC1"]
    assert skid.camera._driver is plant.drivers["PLC1"]
    trigger = plant.drivers["PLC1"].points["coil:8"]  # type: ignore[attr-defined]
    assert (trigger.table, trigger.address, trigger.dtype, trigger.writable) == (
        "coil", 8, "bool", True,
    )  # fmt: skip
    assert "coil:8" not in plant.table.snapshot()  # the trigger is no tag: it is never scanned


def test_demo_drop_folder_is_created_when_missing(tmp_path: Path) -> None:
    (tmp_path / "cameras.toml").write_text(camera(SKID, drop_folder="pictures/skid"))
    assert demo_drop_folder(tmp_path) == tmp_path / "pictures" / "skid"
    assert (tmp_path / "pictures" / "skid").is_dir()


def test_demo_configuration_with_cameras_passes_hmi_config_check() -> None:
    result = CliRunner().invoke(main, ["config", "check", str(DEMO)])
    assert result.exit_code == 0, result.output


# -- problems ------------------------------------------------------------------------------


def test_a_missing_file_means_no_cameras(tmp_path: Path) -> None:
    write(tmp_path, "")
    (tmp_path / "cameras.toml").unlink()
    assert load_config(tmp_path).cameras == []


def test_unknown_device_names_the_known_devices(tmp_path: Path) -> None:
    write(tmp_path, camera(SKID, device="PLC9"))
    assert problems(tmp_path) == [
        "cameras.toml: camera[0] (BR101.CAM).device: unknown device 'PLC9'; devices are PLC1, MIC1"
    ]


def test_wrong_device_kind_either_way(tmp_path: Path) -> None:
    write(tmp_path, camera(MICROSCOPE, device="PLC1") + camera(SKID, device="MIC1"))
    assert problems(tmp_path) == [
        "cameras.toml: camera[0] (MIC1.CAM).device: PLC1 is a Modbus device; an OPC UA method "
        "camera needs an OPC UA server",
        "cameras.toml: camera[1] (BR101.CAM).device: MIC1 is an OPC UA server; a "
        "Modbus-triggered camera needs a Modbus device",
    ]


@pytest.mark.parametrize(
    ("trigger", "reason"),
    [
        ("zz:8", "unknown Modbus table 'zz' in 'zz:8'; use hr, ir, coil or di"),
        ("coil:70000", "address 70000 in 'coil:70000' is above 65535"),
        ("ir:3", "'ir:3' is an input register, which cannot be written; a trigger is a coil or "
         "a holding register"),
        ("di:0", "'di:0' is a discrete input, which cannot be written"),
    ],
)  # fmt: skip
def test_bad_trigger_address(tmp_path: Path, trigger: str, reason: str) -> None:
    write(tmp_path, camera(SKID, trigger=trigger))
    (line,) = problems(tmp_path)
    assert line.startswith("cameras.toml: camera[0] (BR101.CAM).trigger: ")
    assert reason in line


def test_a_holding_register_or_a_modicon_coil_number_may_trigger(tmp_path: Path) -> None:
    write(tmp_path, camera(SKID, trigger="00009") + camera(SKID, name="CAM2", trigger="hr:12"))
    first, second = load_config(tmp_path).cameras
    assert isinstance(first, ModbusTriggerCameraConfig)
    assert isinstance(second, ModbusTriggerCameraConfig)
    assert first.trigger_point()[2] == "coil:8" and second.trigger_point()[2] == "hr:12"


def test_bad_node_ids(tmp_path: Path) -> None:
    write(tmp_path, camera(MICROSCOPE, object_id="MIC1.Camera", method_id="Capture"))
    lines = problems(tmp_path)
    assert [line.split(": ")[1] for line in lines] == [
        "camera[0] (MIC1.CAM).object_id",
        "camera[0] (MIC1.CAM).method_id",
    ]
    assert "'MIC1.Camera' is not an OPC UA node id; write ns=<index>;s=<name>" in lines[0]


def test_duplicate_names_and_triggers_and_a_name_a_tag_has(tmp_path: Path) -> None:
    write(
        tmp_path,
        camera(SKID)
        + camera(SKID, name="OTHER", trigger="00009")
        + camera(MICROSCOPE, name="BR101.CAM")
        + camera(MICROSCOPE, name="BR101.TEMP_PV"),
    )
    assert problems(tmp_path) == [
        "cameras.toml: camera[1] (OTHER).trigger: coil:8 of PLC1 already triggers camera[0]; "
        "each camera needs its own trigger",
        "cameras.toml: camera[2] (BR101.CAM).name: duplicate camera name (first at camera[0])",
        "cameras.toml: camera[3] (BR101.TEMP_PV).name: a tag has this name; commands and records "
        "name cameras and tags alike, so the names must differ",
    ]


def test_drop_folder_must_exist_relative_to_the_config_or_absolute(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    write(
        tmp_path / "cfg",
        camera(SKID, drop_folder="missing")
        + camera(SKID, name="B", trigger="coil:9", drop_folder=str(tmp_path / "afile"))
        + camera(SKID, name="C", trigger="coil:10", drop_folder=str(tmp_path)),
    )
    assert problems(tmp_path / "cfg") == [
        f"cameras.toml: camera[0] (BR101.CAM).drop_folder: folder not found: "
        f"{tmp_path / 'cfg' / 'missing'}",
        f"cameras.toml: camera[1] (B).drop_folder: not a folder: {tmp_path / 'afile'}",
    ]
    write(tmp_path / "cfg", camera(SKID, drop_folder="../cfg/drop"))
    (cam,) = load_config(tmp_path / "cfg").cameras
    assert isinstance(cam, ModbusTriggerCameraConfig)
    assert cam.drop_folder == tmp_path / "cfg" / "drop"


def test_kind_keys_esign_and_timing_are_checked(tmp_path: Path) -> None:
    write(
        tmp_path,
        camera(SKID, kind="webcam")
        + camera(SKID, name="B", colour="red")
        + camera(SKID, name="C", esign="triple")
        + camera(SKID, name="D", settle_s=12.0, pattern=".*.png")
        + camera({k: v for k, v in MICROSCOPE.items() if k != "method_id"}),
    )
    lines = problems(tmp_path)
    assert lines[0] == (
        'cameras.toml: camera[0] (BR101.CAM).kind: must be "opcua_method" or '
        "\"modbus_trigger\", not 'webcam'"
    )
    assert lines[1].startswith(
        "cameras.toml: camera[1] (B).colour: unknown key; ModbusTriggerCameraConfig keys are "
        "name, device, description, area, equipment, esign, kind, trigger, drop_folder"
    )
    assert lines[2] == (
        "cameras.toml: camera[2] (C).esign: Input should be 'none', 'single' or 'double'"
    )
    assert lines[3:] == [
        "cameras.toml: camera[3] (D).pattern: hidden names (.*) are a camera's temporary files "
        "and ignored",
        "cameras.toml: camera[3] (D).settle_s: must be below timeout_s (10 s)",
        "cameras.toml: camera[4] (MIC1.CAM).method_id: required key is missing",
    ]


def test_settings_limits_defaults_and_types(tmp_path: Path) -> None:
    write(
        tmp_path,
        camera(
            MICROSCOPE,
            [
                {**EXPOSURE, "low": 5.0, "high": 1.0},
                {"name": "Gain", "type": "int", "default": 50, "high": 20},
                {"name": "Auto", "type": "bool", "low": 0},
                {"name": "Mode", "type": "string", "default": 3},
                {**EXPOSURE, "default": 1.0},
            ],
        )
        + camera(MICROSCOPE, [{**EXPOSURE, "unit": "ms"}], name="M2"),
    )
    assert problems(tmp_path) == [
        "cameras.toml: camera[0] (MIC1.CAM).setting[0] (ExposureMs).high: must be above low "
        "(1 <= 5)",
        "cameras.toml: camera[0] (MIC1.CAM).setting[1] (Gain).default: Gain 50 is above its "
        "limit 20",
        "cameras.toml: camera[0] (MIC1.CAM).setting[2] (Auto).low: limits do not apply to a "
        "bool setting",
        "cameras.toml: camera[0] (MIC1.CAM).setting[3] (Mode).default: Mode must be a string, "
        "not 3",
        "cameras.toml: camera[0] (MIC1.CAM).setting[4] (ExposureMs).name: duplicate setting "
        "name (first at setting[0])",
        "cameras.toml: camera[1] (M2).setting[0] (ExposureMs).unit: unknown key; setting keys "
        "are name, type, default, low, high, units, description",
    ]


def test_a_camera_on_a_device_that_failed_its_own_check_is_not_reported_twice(
    tmp_path: Path,
) -> None:
    devices = DEVICES.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\nunit = 300')
    write(tmp_path, camera(SKID), devices=devices, tags="")
    lines = problems(tmp_path)
    assert len(lines) == 1 and lines[0].startswith("devices.toml: device[0] (PLC1).unit")


def test_device_tag_and_camera_problems_come_in_one_round_in_file_order(tmp_path: Path) -> None:
    tags = TAGS.replace('device = "PLC1"', 'device = "PLC7"')
    devices = DEVICES + '\n[[device]]\nname = "MIC1"\nkind = "opcua"\nendpoint = "opc.tcp://x"\n'
    write(tmp_path, camera(SKID, device="PLC9"), devices=devices, tags=tags)
    lines = problems(tmp_path)
    assert [line.split(":")[0] for line in lines] == ["devices.toml", "tags.toml", "cameras.toml"]


def test_a_plant_config_built_in_code_checks_its_cameras() -> None:
    with pytest.raises(ValidationError, match=r"camera\[0\] \(CAM\)\.device: unknown device"):
        PlantConfig(
            cameras=[ModbusTriggerCameraConfig(
                kind="modbus_trigger", name="CAM", device="PLC1", trigger="coil:8",
                drop_folder=Path("/tmp"),
            )]
        )  # fmt: skip


def test_schema_and_config_check_cover_cameras(tmp_path: Path) -> None:
    schema = json.loads(CliRunner().invoke(main, ["config", "schema"]).output)
    defs = schema["cameras.toml"]["$defs"]
    assert {"OpcUaMethodCameraConfig", "ModbusTriggerCameraConfig", "CameraSetting"} <= set(defs)
    assert defs["ModbusTriggerCameraConfig"]["properties"]["esign"]["default"] == "single"
    write(tmp_path, camera(SKID, device="PLC9"))
    result = CliRunner().invoke(main, ["config", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "cameras.toml: camera[0] (BR101.CAM).device: unknown device 'PLC9'" in result.output


# -- settings at capture time and building -------------------------------------------------


def test_setting_problems_say_what_a_capture_may_not_send() -> None:
    mic = OpcUaMethodCameraConfig.model_validate(
        {**MICROSCOPE, "setting": [EXPOSURE, {"name": "Gain", "type": "int", "low": 1}]}
    )
    assert mic.setting_problems({"Gain": 2}) == []
    assert mic.setting_problems({"ExposureMs": 0.01, "Gain": True, "Iso": 1}) == [
        "MIC1.CAM has no setting Iso; its settings: ExposureMs, Gain",
        "ExposureMs 0.01 ms is below its limit 0.1 ms",
        "Gain must be an int, not True",
    ]
    assert mic.setting_problems({}) == ["Gain has no default; a capture must give it"]
    assert CameraSetting(name="X", type="float").value_problem(3) is None
    skid = ModbusTriggerCameraConfig.model_validate({**SKID, "drop_folder": "/tmp"})
    assert skid.setting_problems({"ExposureMs": 1.0}) == [
        "BR101.CAM is triggered by a coil and takes no settings"
    ]


async def test_a_configured_camera_refuses_before_asking_the_device() -> None:
    asked: list[object] = []

    class Recorder:
        name = "inner"

        async def capture(self, settings: object = None) -> object:
            asked.append(settings)
            raise AssertionError("the device was asked")

    mic = OpcUaMethodCameraConfig.model_validate({**MICROSCOPE, "setting": [EXPOSURE]})
    cam = ConfiguredCamera(Recorder(), mic)  # type: ignore[arg-type]
    with pytest.raises(CaptureRefused, match=r"camera MIC1\.CAM: ExposureMs 2000 ms is above"):
        await cam.capture({"ExposureMs": 2000.0})
    assert asked == [] and cam.name == "MIC1.CAM" and cam.config is mic


def test_what_cannot_be_built_is_a_config_error_with_file_and_key(tmp_path: Path) -> None:
    write(tmp_path, camera(SKID) + camera(MICROSCOPE))
    cfg = load_config(tmp_path)
    drivers = build_drivers(cfg, environ={})
    with pytest.raises(ConfigError) as caught:
        build_cameras(cfg, {"PLC1": drivers["PLC1"]})
    assert caught.value.message == (
        f"{tmp_path / 'cameras.toml'}: camera[1] (MIC1.CAM).device: no driver for device 'MIC1'"
    )
    unchecked = PlantConfig.model_validate(
        {
            "devices": [ModbusDevice(kind="modbus", name="PLC1", host="h"),
                        OpcUaDevice(kind="opcua", name="MIC1", endpoint="opc.tcp://h")],
            "cameras": [{**SKID, "drop_folder": "/tmp"},
                        {**SKID, "name": "B", "drop_folder": "/tmp"}],
        },
        context=DEFERRED,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"camera\[1\] \(B\)\.trigger: coil:8 of PLC1 already"):
        build_drivers(unchecked, environ={})
