"""The plant: configuration → drivers, tag table, scanner and cameras.

The one place that turns ``devices.toml``, ``tags.toml`` and ``cameras.toml``
into protocol drivers and cameras, so the core never imports pymodbus or
asyncua. Each tag becomes a driver point of the same name; the trigger of a
Modbus-triggered camera becomes a point of its device named by its address
(``coil:8``), so that cameras share the plant's own connections instead of
opening second ones the device may refuse. Secrets are read here, when the
runtime starts, and nowhere else: a device's password comes from the
environment variable or file its configuration names, and a missing one stops
start-up with the file, key path and reason, like any other configuration
error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from drivers.base import Driver, MethodCalling
from drivers.camera import (
    Camera,
    CaptureRefused,
    CaptureResult,
    ModbusTriggerCamera,
    OpcUaMethodCamera,
    Settings,
)
from drivers.modbus import ModbusDriver, ModbusPoint, ModbusSettings, SerialSettings
from drivers.opcua import OpcUaDriver, OpcUaPoint, OpcUaSettings, SecurityMode, SecurityPolicy
from hmi.core.camera_config import (
    CAMERAS_FILE,
    CameraConfig,
    ModbusTriggerCameraConfig,
    OpcUaMethodCameraConfig,
)
from hmi.core.clock import Clock
from hmi.core.config import PlantConfig
from hmi.core.errors import ConfigError
from hmi.core.plant_check import modbus_point
from hmi.core.plant_config import DEVICES_FILE, TAGS_FILE, ModbusDevice, OpcUaDevice, TagConfig
from hmi.core.plant_config import label as entry_label
from hmi.core.scanner import LinkEventCallback, Scanner
from hmi.core.tag_table import TagDef, TagTable

RECONNECT_INITIAL_S = 0.5
"""First reconnect delay; it doubles up to the device's ``reconnect_max_s``."""


def _where(config: PlantConfig, file: str, kind: str, index: int, name: str, key: str) -> str:
    return f"{config.file(file)}: {entry_label(kind, index, name)}.{key}"


def read_password(
    config: PlantConfig, device: OpcUaDevice, index: int, environ: Mapping[str, str]
) -> str | None:
    """The password of ``device``'s user, from its environment variable or file."""
    if device.username is None:
        return None
    if device.password_env is not None:
        where = _where(config, DEVICES_FILE, "device", index, device.name, "password_env")
        value = environ.get(device.password_env)
        if not value:
            raise ConfigError(
                f"{where}: environment variable {device.password_env} is not set (or empty); "
                f"set it to the password of user {device.username!r} before starting"
            )
        return value
    assert device.password_file is not None
    where = _where(config, DEVICES_FILE, "device", index, device.name, "password_file")
    path = device.password_file
    if not path.is_absolute() and config.directory is not None:
        path = config.directory / path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from exc
    if not lines or not lines[0]:
        raise ConfigError(f"{where}: {path} is empty; its first line is the password")
    return lines[0]


def modbus_driver(
    config: PlantConfig,
    device: ModbusDevice,
    index: int,
    tags: Sequence[tuple[int, TagConfig]],
    cameras: Sequence[tuple[int, ModbusTriggerCameraConfig]] = (),
) -> ModbusDriver:
    points: list[ModbusPoint] = []
    for i, tag in tags:
        try:
            points.append(modbus_point(tag, device))
        except ValueError as exc:
            where = _where(config, TAGS_FILE, "tag", i, tag.name, "address")
            raise ConfigError(f"{where}: {exc}") from exc
    names = {p.name for p in points}
    for i, camera in cameras:
        where = _where(config, CAMERAS_FILE, "camera", i, camera.name, "trigger")
        try:
            table, address, name = camera.trigger_point()
            if name in names:
                raise ValueError(f"{name} of {device.name} already triggers another camera")
            points.append(ModbusPoint(name, table, address, "bool", writable=True))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        names.add(name)
    serial = None
    if device.serial is not None:
        s = device.serial
        serial = SerialSettings(s.port, s.baudrate, s.parity, s.stopbits, s.bytesize)
    try:
        settings = ModbusSettings(
            host=device.host or "",
            port=device.port,
            device_id=device.unit,
            timeout=device.timeout_s,
            max_gap=device.max_gap,
            reconnect_initial=min(RECONNECT_INITIAL_S, device.reconnect_max_s),
            reconnect_max=device.reconnect_max_s,
            serial=serial,
        )
    except ValueError as exc:
        where = f"{config.file(DEVICES_FILE)}: {entry_label('device', index, device.name)}"
        raise ConfigError(f"{where}: {exc}") from exc
    return ModbusDriver(device.name, points, settings)


def opcua_driver(
    config: PlantConfig,
    device: OpcUaDevice,
    index: int,
    tags: Sequence[tuple[int, TagConfig]],
    environ: Mapping[str, str],
) -> OpcUaDriver:
    mode = SecurityMode.SIGN if device.security_mode == "Sign" else SecurityMode.SIGN_AND_ENCRYPT
    try:
        settings = OpcUaSettings(
            device.endpoint,
            security_policy=SecurityPolicy(device.security_policy),
            security_mode=mode,
            client_certificate=device.certificate,
            client_private_key=device.private_key,
            server_certificate=device.server_certificate,
            username=device.username,
            password=read_password(config, device, index, environ),
            sampling_interval_ms=device.sampling_ms,
            publishing_interval_ms=device.publishing_ms,
            request_timeout_s=device.timeout_s,
            backoff_initial_s=min(RECONNECT_INITIAL_S, device.reconnect_max_s),
            backoff_max_s=device.reconnect_max_s,
        )
    except ValueError as exc:
        where = f"{config.file(DEVICES_FILE)}: {entry_label('device', index, device.name)}"
        raise ConfigError(f"{where}: {exc}") from exc
    points = [OpcUaPoint(tag.name, tag.address, tag.writable) for _, tag in tags]
    return OpcUaDriver(device.name, settings, points)


def build_drivers(
    config: PlantConfig, *, environ: Mapping[str, str] | None = None
) -> dict[str, Driver]:
    """One driver per configured device, with its tags as points (ConfigError if impossible)."""
    env = os.environ if environ is None else environ
    tags: dict[str, list[tuple[int, TagConfig]]] = {}
    for i, tag in enumerate(config.tags):
        tags.setdefault(tag.device, []).append((i, tag))
    triggers: dict[str, list[tuple[int, ModbusTriggerCameraConfig]]] = {}
    for i, camera in enumerate(config.cameras):
        if isinstance(camera, ModbusTriggerCameraConfig):
            triggers.setdefault(camera.device, []).append((i, camera))
    drivers: dict[str, Driver] = {}
    for index, device in enumerate(config.devices):
        mine = tags.get(device.name, [])
        if isinstance(device, ModbusDevice):
            cams = triggers.get(device.name, [])
            drivers[device.name] = modbus_driver(config, device, index, mine, cams)
        else:
            drivers[device.name] = opcua_driver(config, device, index, mine, env)
    return drivers


class ConfiguredCamera:
    """A camera as cameras.toml describes it.

    Settings the configuration does not declare, or outside their limits,
    are refused before the device is asked, so a capture cannot send what
    the engineer did not allow. ``config`` carries area, equipment and the
    signature policy for the command service.
    """

    def __init__(self, camera: Camera, config: CameraConfig) -> None:
        self.name = config.name
        self.config = config
        self.camera = camera

    async def capture(self, settings: Settings | None = None) -> CaptureResult:
        problems = self.config.setting_problems(settings or {})
        if problems:
            raise CaptureRefused(f"camera {self.name}: {'; '.join(problems)}")
        return await self.camera.capture(settings)


def _camera(config: PlantConfig, index: int, camera: CameraConfig, driver: Driver) -> Camera:
    where = f"{config.file(CAMERAS_FILE)}: {entry_label('camera', index, camera.name)}"
    if isinstance(camera, OpcUaMethodCameraConfig):
        if not isinstance(driver, MethodCalling):
            raise ConfigError(f"{where}.device: {driver.name} cannot call methods")
        return OpcUaMethodCamera(
            driver,
            camera.object_id,
            camera.method_id,
            name=camera.name,
            inputs=[s.name for s in camera.setting],
            defaults={s.name: s.default for s in camera.setting if s.default is not None},
            image_output=camera.image_output,
            settings_output=camera.settings_output,
            time_setting=camera.time_setting or None,
            timeout_s=camera.timeout_s,
        )
    folder = camera.drop_folder
    if not folder.is_absolute() and config.directory is not None:
        folder = (config.directory / folder).resolve()
    try:
        _, _, point = camera.trigger_point()
    except ValueError as exc:
        raise ConfigError(f"{where}.trigger: {exc}") from exc
    return ModbusTriggerCamera(
        driver,
        point,
        folder,
        camera.pattern,
        camera.timeout_s,
        name=camera.name,
        settle_s=camera.settle_s,
    )


def build_cameras(
    config: PlantConfig, drivers: Mapping[str, Driver]
) -> dict[str, ConfiguredCamera]:
    """One camera per cameras.toml entry, on the plant's own drivers (ConfigError if impossible)."""
    cameras: dict[str, ConfiguredCamera] = {}
    for index, camera in enumerate(config.cameras):
        where = f"{config.file(CAMERAS_FILE)}: {entry_label('camera', index, camera.name)}"
        driver = drivers.get(camera.device)
        if driver is None:
            raise ConfigError(f"{where}.device: no driver for device {camera.device!r}")
        if camera.name in cameras:
            raise ConfigError(f"{where}.name: duplicate camera name")
        try:
            built = _camera(config, index, camera, driver)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        cameras[camera.name] = ConfiguredCamera(built, camera)
    return cameras


@dataclass
class Plant:
    """The supervised plant: what the runtime starts, stops and reads.

    Cameras use the drivers' connections, so they work while the plant runs.
    """

    config: PlantConfig
    drivers: dict[str, Driver]
    table: TagTable
    scanner: Scanner
    cameras: dict[str, ConfiguredCamera] = field(default_factory=dict)

    async def start(self) -> None:
        await self.scanner.start()

    async def stop(self) -> None:
        await self.scanner.stop()


def build_plant(
    config: PlantConfig,
    *,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    on_link: LinkEventCallback | None = None,
) -> Plant:
    """Drivers, tag table, scanner and cameras for ``config``; nothing is started yet."""
    drivers = build_drivers(config, environ=environ)
    cameras = build_cameras(config, drivers)
    table = TagTable((TagDef.from_config(t) for t in config.tags), clock=clock)
    scanner = Scanner(table, drivers, config.scan_classes, clock=clock, on_link=on_link)
    return Plant(config, drivers, table, scanner, cameras)
