"""Cameras: the model of ``cameras.toml`` and its checks against the devices and tags.

A camera is reached through a device of devices.toml, so a camera entry is
only meaningful together with that file: an OPC UA method camera needs an
OPC UA server, a Modbus-triggered camera a Modbus device with a writable
trigger and a drop folder this host can read. Problems are reported like
those of devices and tags, with file, key path (``camera[1] (BR101.CAM).
trigger``, entries counted from 0) and reason, all in one round.

``area``, ``equipment`` and ``esign`` are not used by the drivers; they are
here because a capture is a command, and the command service decides from
them who may capture from which terminal and how many signatures it needs.
The settings of an OPC UA camera are declared with their limits for the same
reason: a setting outside them is refused before anyone is asked to sign.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from drivers.modbus_points import Table, parse_address
from hmi.core.plant_check import _NODE_ID, _NOT_A_NODE_ID, _entries
from hmi.core.plant_config import (
    DEFERRED,
    DEVICES_FILE,
    TAG_PATTERN,
    Device,
    KeyProblems,
    Problem,
    TagConfig,
    _check,
    _Model,
    label,
)

CAMERAS_FILE = "cameras.toml"
ESign = Literal["none", "single", "double"]
SettingValue = bool | int | float | str
TRIGGER_TABLES: dict[str, str] = {"coil": "coil", "holding_register": "hr"}
"""Tables a trigger may be in (it is written), and the prefix of the trigger's point name."""
_DEVICE_KIND = {"opcua_method": "opcua", "modbus_trigger": "modbus"}
_CAMERA_NAME = {
    "opcua_method": "an OPC UA method camera",
    "modbus_trigger": "a Modbus-triggered camera",
}
_KIND_NAME = {"opcua": "an OPC UA server", "modbus": "a Modbus device"}


class CameraSetting(_Model):
    """One input argument of an OPC UA camera's method, in the method's argument order."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$", description="argument name")
    type: Literal["float", "int", "bool", "string"] = "float"
    default: SettingValue | None = Field(None, description="used when a capture does not set it")
    low: float | None = Field(None, description="lowest value a capture may ask for")
    high: float | None = Field(None, description="highest value a capture may ask for")
    units: str = ""
    description: str = ""

    def value_problem(self, value: object) -> str | None:
        """Why ``value`` may not be sent for this setting, or None."""
        numeric = self.type in ("float", "int")
        expected: tuple[type, ...] = {
            "float": (int, float),
            "int": (int,),
            "bool": (bool,),
            "string": (str,),
        }[self.type]
        if not isinstance(value, expected) or (numeric and isinstance(value, bool)):
            article = "an" if self.type == "int" else "a"
            return f"{self.name} must be {article} {self.type}, not {value!r}"
        if numeric and isinstance(value, int | float):
            units = f" {self.units}" if self.units else ""
            if self.low is not None and value < self.low:
                return f"{self.name} {value:g}{units} is below its limit {self.low:g}{units}"
            if self.high is not None and value > self.high:
                return f"{self.name} {value:g}{units} is above its limit {self.high:g}{units}"
        return None

    def problems(self) -> KeyProblems:
        out: KeyProblems = []
        if self.type in ("bool", "string"):
            out += [(k, f"limits do not apply to a {self.type} setting")
                    for k in ("low", "high") if getattr(self, k) is not None]  # fmt: skip
        elif self.low is not None and self.high is not None and self.low >= self.high:
            out.append(("high", f"must be above low ({self.high:g} <= {self.low:g})"))
        if self.default is not None and not out:
            why = self.value_problem(self.default)
            if why is not None:
                out.append(("default", why))
        return out


class _CameraBase(_Model):
    name: str = Field(pattern=TAG_PATTERN, description="e.g. MIC1.CAM; commands and records use it")
    device: str = Field(description="the name of a device in devices.toml")
    description: str = ""
    area: str = Field("", description="where the camera belongs (terminal permissions)")
    equipment: str = ""
    esign: ESign = Field("single", description="signatures a capture needs")


class OpcUaMethodCameraConfig(_CameraBase):
    """A camera behind an OPC UA method that returns the image as a ByteString."""

    kind: Literal["opcua_method"]
    object_id: str = Field(description="node id of the object the method belongs to")
    method_id: str = Field(description="node id of the method")
    setting: list[CameraSetting] = Field(
        default_factory=list, description="the method's input arguments, in order"
    )
    image_output: int = Field(0, ge=0, description="index of the ByteString output")
    settings_output: int = Field(3, ge=0, description="index of a String output holding JSON")
    time_setting: str = Field("time", description="key of the camera's ISO 8601 time in it")
    timeout_s: float = Field(30.0, gt=0, le=600)

    def problems(self) -> KeyProblems:
        out: KeyProblems = []
        first: dict[str, int] = {}
        for i, setting in enumerate(self.setting):
            where = label("setting", i, setting.name)
            if setting.name in first:
                why = f"duplicate setting name (first at setting[{first[setting.name]}])"
                out.append((f"{where}.name", why))
            first.setdefault(setting.name, i)
            out += [(f"{where}.{key}", reason) for key, reason in setting.problems()]
        if self.settings_output == self.image_output:
            out.append(("settings_output", "must differ from image_output"))
        return out

    def setting_problems(self, settings: Mapping[str, object]) -> list[str]:
        """Why ``settings`` may not be sent to this camera (empty: they may)."""
        known = {s.name: s for s in self.setting}
        out = [
            f"{self.name} has no setting {name}; its settings: {', '.join(known) or 'none'}"
            for name in sorted(set(settings) - set(known))
        ]
        for name, setting in known.items():
            if name in settings:
                why = setting.value_problem(settings[name])
                if why is not None:
                    out.append(why)
            elif setting.default is None:
                out.append(f"{name} has no default; a capture must give it")
        return out

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> OpcUaMethodCameraConfig:
        _check(self.problems(), info)
        return self


class ModbusTriggerCameraConfig(_CameraBase):
    """A camera triggered through a Modbus coil (or register) that drops files into a folder."""

    kind: Literal["modbus_trigger"]
    trigger: str = Field(description="coil or holding register, e.g. coil:8")
    drop_folder: Path = Field(description="relative to the configuration directory, or absolute")
    pattern: str = Field("*.png", min_length=1, description="which file names are pictures")
    timeout_s: float = Field(10.0, gt=0, le=600)
    settle_s: float = Field(
        0.1, ge=0, le=60, description="a file must keep size and time this long"
    )

    def trigger_point(self) -> tuple[Table, int, str]:
        """Table, address and driver point name of the trigger (ValueError if not an address)."""
        table, address = parse_address(self.trigger)
        return table, address, f"{TRIGGER_TABLES.get(table, table)}:{address}"

    def problems(self) -> KeyProblems:
        out: KeyProblems = []
        if self.pattern.startswith("."):
            out.append(("pattern", "hidden names (.*) are a camera's temporary files and ignored"))
        if self.settle_s >= self.timeout_s:
            out.append(("settle_s", f"must be below timeout_s ({self.timeout_s:g} s)"))
        return out

    def setting_problems(self, settings: Mapping[str, object]) -> list[str]:
        if settings:
            return [f"{self.name} is triggered by a coil and takes no settings"]
        return []

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ModbusTriggerCameraConfig:
        _check(self.problems(), info)
        return self


CameraConfig = Annotated[
    OpcUaMethodCameraConfig | ModbusTriggerCameraConfig, Field(discriminator="kind")
]
CAMERA_KINDS: dict[str, type[OpcUaMethodCameraConfig] | type[ModbusTriggerCameraConfig]] = {
    "opcua_method": OpcUaMethodCameraConfig,
    "modbus_trigger": ModbusTriggerCameraConfig,
}


class CamerasFile(_Model):
    """``cameras.toml``: one ``[[camera]]`` table per camera."""

    camera: list[CameraConfig] = Field(default_factory=list)


# -- checks against devices and tags ------------------------------------------------------


def _device_problems(camera: CameraConfig, device: Device) -> KeyProblems:
    wanted = _DEVICE_KIND[camera.kind]
    if device.kind != wanted:
        needs = f"{_CAMERA_NAME[camera.kind]} needs {_KIND_NAME[wanted]}"
        return [("device", f"{device.name} is {_KIND_NAME[device.kind]}; {needs}")]
    if isinstance(camera, OpcUaMethodCameraConfig):
        return [
            (key, f"{value!r} {_NOT_A_NODE_ID}")
            for key, value in (("object_id", camera.object_id), ("method_id", camera.method_id))
            if not _NODE_ID.match(value)
        ]
    try:
        table, _, _ = camera.trigger_point()
    except ValueError as exc:
        return [("trigger", str(exc))]
    if table not in TRIGGER_TABLES:
        kind = table.replace("_", " ")
        return [("trigger", f"{camera.trigger!r} is {'an' if kind[0] == 'i' else 'a'} {kind}, "
                 "which cannot be written; a trigger is a coil or a holding register")]  # fmt: skip
    return []


def check_cameras(
    cameras: Sequence[CameraConfig],
    devices: Sequence[Device],
    tags: Sequence[TagConfig] = (),
    *,
    broken_devices: Iterable[str] = (),
    indexes: Sequence[int] | None = None,
) -> list[Problem]:
    """Every camera's own problems, and those between cameras, devices and tags.

    ``broken_devices`` names devices that failed their own validation (already
    reported); ``indexes`` gives each camera's position in its file.
    """
    problems: list[Problem] = []
    by_name = {d.name: d for d in devices}
    broken = set(broken_devices)
    tag_names = {t.name for t in tags}
    first: dict[str, int] = {}
    triggers: dict[tuple[str, str], int] = {}
    for i, camera in zip(indexes or range(len(cameras)), cameras, strict=True):
        found = camera.problems()
        if camera.name in first:
            found.append(("name", f"duplicate camera name (first at camera[{first[camera.name]}])"))
        first.setdefault(camera.name, i)
        if camera.name in tag_names:
            found.append(("name", "a tag has this name; commands and records name cameras and "
                          "tags alike, so the names must differ"))  # fmt: skip
        device = by_name.get(camera.device)
        if device is None and camera.device not in broken:
            known = ", ".join(by_name) or f"none (no [[device]] in {DEVICES_FILE})"
            found.append(("device", f"unknown device {camera.device!r}; devices are {known}"))
        elif device is not None:
            more = _device_problems(camera, device)
            found += more
            if isinstance(camera, ModbusTriggerCameraConfig) and not more:
                key = (device.name, camera.trigger_point()[2])
                if key in triggers:
                    why = f"{key[1]} of {key[0]} already triggers camera[{triggers[key]}]"
                    found.append(("trigger", f"{why}; each camera needs its own trigger"))
                triggers.setdefault(key, i)
        where = label("camera", i, camera.name)
        problems += [Problem(CAMERAS_FILE, f"{where}.{key}", why) for key, why in found]
    return problems


# -- loading ------------------------------------------------------------------------------


def _key_path(loc: Sequence[int | str], raw: Mapping[str, Any]) -> str:
    """``setting[0] (ExposureMs).high`` for a pydantic location inside one camera."""
    if len(loc) >= 2 and loc[0] == "setting" and isinstance(loc[1], int):
        entries = raw.get("setting")
        entry = entries[loc[1]] if isinstance(entries, list) and len(entries) > loc[1] else {}
        name = entry.get("name") if isinstance(entry, dict) else None
        return ".".join([label("setting", loc[1], name), *map(str, loc[2:])])
    return ".".join(map(str, loc))


def _reason(item: Any, nested: bool, model: type[_Model]) -> str:
    if item["type"] == "extra_forbidden":
        keys = (CameraSetting if nested else model).model_fields
        return f"unknown key; {'setting' if nested else model.__name__} keys are {', '.join(keys)}"
    if item["type"] == "missing":
        return "required key is missing"
    return str(item["msg"])


def _validate(raw: Any, where: str, problems: list[Problem]) -> CameraConfig | None:
    if not isinstance(raw, dict):
        problems.append(Problem(CAMERAS_FILE, where, "must be a table"))
        return None
    kind = raw.get("kind")
    model = CAMERA_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        why = f'must be "opcua_method" or "modbus_trigger", not {kind!r}'
        problems.append(Problem(CAMERAS_FILE, f"{where}.kind", why))
        return None
    try:
        return model.model_validate(raw, context=DEFERRED)
    except ValidationError as exc:
        for item in exc.errors():
            loc = item["loc"]
            nested = len(loc) > 2 and loc[0] == "setting"
            path = _key_path(loc, raw)
            why = _reason(item, nested, model)
            problems.append(Problem(CAMERAS_FILE, f"{where}.{path}" if path else where, why))
        return None


def _resolve(camera: CameraConfig, where: str, directory: Path, out: list[Problem]) -> CameraConfig:
    """A drop folder relative to the configuration directory; it must exist now."""
    if not isinstance(camera, ModbusTriggerCameraConfig):
        return camera
    folder = camera.drop_folder
    folder = folder if folder.is_absolute() else (directory / folder).resolve()
    if not folder.exists():
        out.append(Problem(CAMERAS_FILE, f"{where}.drop_folder", f"folder not found: {folder}"))
    elif not folder.is_dir():
        out.append(Problem(CAMERAS_FILE, f"{where}.drop_folder", f"not a folder: {folder}"))
    return camera.model_copy(update={"drop_folder": folder})


def read_cameras(
    directory: Path,
    devices: Sequence[Device],
    tags: Sequence[TagConfig],
    problems: list[Problem],
    *,
    broken_devices: Iterable[str] = (),
) -> list[CameraConfig]:
    """The cameras of ``cameras.toml`` (a missing file means none); problems are added."""
    cameras: list[CameraConfig] = []
    indexes: list[int] = []
    for i, raw in _entries(directory / CAMERAS_FILE, "camera", problems):
        where = label("camera", i, raw.get("name") if isinstance(raw, dict) else None)
        camera = _validate(raw, where, problems)
        if camera is not None:
            cameras.append(_resolve(camera, where, directory, problems))
            indexes.append(i)
    problems += check_cameras(
        cameras, devices, tags, broken_devices=broken_devices, indexes=indexes
    )
    return cameras
