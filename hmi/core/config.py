"""The plant configuration: TOML files validated by pydantic models.

Errors name the file, the key path and the reason, because the person
reading them is an engineer with the file open. Files in a configuration
directory:

* ``plant.toml``: plant identity, scan classes (name → period in seconds),
  ``[commands]`` (signatures per command type, approval expiry), the
  ``[[terminal]]`` list (``hmi.core.terminals``), and the ``[clock]`` and
  ``[storage]`` limits of the system checks (``hmi.core.system_checks``);
* ``security.toml``: password policy, lockout, sessions, signatures, roles
  and their permissions, password hashing parameters;
* ``devices.toml`` and ``tags.toml``: the devices and their tags (see
  ``hmi.core.plant_config`` and docs/driver-config.md);
* ``cameras.toml``: the cameras on those devices (``hmi.core.camera_config``,
  docs/cameras.md);
* ``procedures/*.toml``: step sequences (``hmi.core.procedure_config`` and
  docs/procedures.md).

A missing file means its defaults. ``hmi config schema`` prints the JSON
Schema of these models for editors.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hmi.core.alarm_config import ALARMS_FILE, AlarmConfig, AlarmsFile, read_alarms
from hmi.core.camera_config import (
    CAMERAS_FILE,
    CameraConfig,
    CamerasFile,
    check_cameras,
    read_cameras,
)
from hmi.core.change_policy import ChangeControlPolicy
from hmi.core.errors import BackupError, ConfigError
from hmi.core.plant_check import cross_check, read_devices_and_tags, render_problems
from hmi.core.plant_config import (
    DEFAULT_SCAN_CLASSES,
    DEFERRED,
    DEVICES_FILE,
    TAGS_FILE,
    Device,
    DevicesFile,
    Problem,
    TagConfig,
    TagsFile,
)
from hmi.core.procedure_config import PROCEDURES_DIR, Procedure, read_procedures
from hmi.core.terminals import TerminalConfig, check_unique

ROLES = ("operator", "supervisor", "engineer", "qa", "admin")

ACTIONS = (
    "write_setpoint",
    "capture_image",
    "operate_equipment",
    "acknowledge_alarm",
    "shelve_alarm",
    "run_procedure",
    "approve_command",
    "query_records",
    "export_records",
    "verify_records",
    "edit_configuration",
    "approve_configuration",
    "administer_users",
    "view_security_events",
    "view_records",
)
"""Every permission a role may hold. Signing is part of each action's permission (SIG-4)."""

DEFAULT_PERMISSIONS: dict[str, list[str]] = {
    "operator": [
        "write_setpoint",
        "capture_image",
        "operate_equipment",
        "acknowledge_alarm",
        "run_procedure",
    ],
    "supervisor": [
        "write_setpoint",
        "capture_image",
        "operate_equipment",
        "acknowledge_alarm",
        "shelve_alarm",
        "run_procedure",
        "approve_command",
        "export_records",
        "view_records",
    ],
    "engineer": ["edit_configuration", "acknowledge_alarm"],
    "qa": [
        "query_records",
        "export_records",
        "verify_records",
        "approve_configuration",
        "view_security_events",
        "view_records",
    ],
    "admin": [
        "administer_users",
        "approve_configuration",
        "view_security_events",
        "verify_records",
        "view_records",
    ],
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PasswordPolicy(_Model):
    min_length: int = Field(8, ge=6, le=128)
    require_letter: bool = True
    require_digit: bool = True
    expiry_days: int = Field(90, ge=0, description="0 disables expiry")
    history: int = Field(5, ge=0, le=50, description="previous passwords that may not be reused")
    temporary_length: int = Field(14, ge=10, le=64)


class Argon2Params(_Model):
    """Argon2id cost; the defaults are RFC 9106's second recommendation (argon2-cffi's own)."""

    time_cost: int = Field(3, ge=1)
    memory_kib: int = Field(65536, ge=8)
    parallelism: int = Field(4, ge=1)


class SessionPolicy(_Model):
    inactivity_timeout_s: int = Field(600, ge=10)
    warning_before_s: int = Field(60, ge=0)
    max_session_s: int = Field(12 * 3600, ge=60)


class SignaturePolicy(_Model):
    signing_window_s: int = Field(
        900, ge=0, description="password-only signing allowed this long after a full one"
    )
    meanings: list[str] = Field(
        default_factory=lambda: ["authored", "performed", "reviewed", "verified", "approved"]
    )
    legal_statement: str = (
        "By signing I confirm that this electronic signature is the legally binding equivalent "
        "of my handwritten signature (21 CFR 11.100)."
    )


class NotifyPolicy(_Model):
    command: list[str] = Field(
        default_factory=list,
        description="program run with the notification text on stdin, e.g. a mail command",
    )
    timeout_s: float = Field(10.0, gt=0)


class SecurityPolicy(_Model):
    password: PasswordPolicy = PasswordPolicy()
    argon2: Argon2Params = Argon2Params()
    lockout_attempts: int = Field(3, ge=1, le=20)
    session: SessionPolicy = SessionPolicy()
    signature: SignaturePolicy = SignaturePolicy()
    notify: NotifyPolicy = NotifyPolicy()
    roles: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_PERMISSIONS))

    @field_validator("roles")
    @classmethod
    def _known_roles_and_actions(cls, roles: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, actions in roles.items():
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
            for action in actions:
                if action not in ACTIONS:
                    raise ValueError(f"role {role!r}: unknown action {action!r}")
        return roles

    def permitted(self, roles: tuple[str, ...], action: str) -> bool:
        return any(action in self.roles.get(role, ()) for role in roles)


class PlantInfo(_Model):
    name: str = "Custos plant"
    site: str = ""


def _with_defaults(value: Any) -> Any:
    """Scan classes named in plant.toml are added to (or override) the defaults."""
    return {**DEFAULT_SCAN_CLASSES, **value} if isinstance(value, dict) else value


def _periods(value: dict[str, float]) -> dict[str, float]:
    for name, period in value.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]{0,31}", name):
            raise ValueError(f"scan class name {name!r} must be a word (letters, digits, _ -)")
        if not 0.01 <= period <= 3600:
            raise ValueError(f"scan class {name!r}: period {period} s is not in 0.01..3600")
    return value


ScanClasses = Annotated[
    dict[str, float],
    BeforeValidator(_with_defaults),
    AfterValidator(_periods),
    Field(description="scan class name → poll period in seconds (fast, normal, slow by default)"),
]


def _default_scan_classes() -> dict[str, float]:
    return dict(DEFAULT_SCAN_CLASSES)


ESign = Literal["none", "single", "double"]


def _default_command_esign() -> dict[str, ESign]:
    return {"write_setpoint": "single", "operate_equipment": "single", "capture_image": "single"}


class CommandPolicy(_Model):
    """``[commands]`` of plant.toml: signatures per command type and approval expiry (SUP-8).

    A tag's own ``esign`` in tags.toml overrides the command type's.
    """

    esign: dict[str, ESign] = Field(default_factory=_default_command_esign)
    approval_expiry_s: int = Field(1800, ge=60, le=7 * 86400)
    readback_s: float = Field(10.0, gt=0, le=300, description="how long a write may take to show")

    @field_validator("esign", mode="before")
    @classmethod
    def _with_defaults(cls, value: Any) -> Any:
        return {**_default_command_esign(), **value} if isinstance(value, dict) else value

    @field_validator("esign")
    @classmethod
    def _known_kinds(cls, value: dict[str, ESign]) -> dict[str, ESign]:
        for kind in value:
            if kind not in ACTIONS:
                raise ValueError(f"unknown command type {kind!r}")
        return value


class ClockCheck(_Model):
    """``[clock]`` of plant.toml: how far a device's clock may drift from the host's.

    Devices stamp their values with their own time (OPC UA SourceTimestamp);
    a drifted device clock makes those times wrong, so drift past the limit
    is a system alarm per device (``SYSTEM.clock_drift.<device>``).
    """

    max_drift_s: float = Field(2.0, gt=0, le=86400, description="largest drift without an alarm")
    check_every_s: float = Field(60.0, ge=1, le=86400, description="seconds between checks")


class StorageCheck(_Model):
    """``[storage]`` of plant.toml: the free space the data directory needs.

    An action whose record cannot be written is refused, so low space is an alarm
    (``SYSTEM.disk_nearly_full``) while there is still time to act.
    """

    min_free_mb: int = Field(
        500, ge=0, description="free megabytes below which the alarm is raised (0: no check)"
    )
    check_every_s: float = Field(60.0, ge=1, le=86400, description="seconds between checks")


class BackupPolicy(_Model):
    """``[backup]`` of plant.toml: when the runtime backs up its data directory, and how many.

    A backup holds the records database, images, anchors and the public key, never
    the private keys (11.10(c)). ``schedule`` (five cron fields, local time) wins over
    ``daily_at`` when both are set.
    """

    keep: int = Field(14, ge=1, le=10000, description="complete backups kept; older are removed")
    daily_at: str | None = Field(
        "02:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local time"
    )
    schedule: str | None = Field(
        None,
        pattern=r"^\S+( \S+){4}$",
        description="cron fields 'minute hour day month day_of_week'",
    )
    to: Path | None = Field(
        None, description="backup directory (default: 'backups' beside the data directory)"
    )
    enabled: bool = Field(
        True, description="false: no scheduled backups (`hmi backup` still works)"
    )
    private_keys: bool = Field(
        False,
        description="true: backups also carry the private keys, sealed under a passphrase",
    )
    passphrase_env: str = Field(
        "CUSTOS_BACKUP_PASSPHRASE",
        pattern=r"^[A-Z_][A-Z0-9_]{0,63}$",
        description="environment variable holding the passphrase when private_keys is true",
    )

    def passphrase(self, environ: Mapping[str, str]) -> str | None:
        """The sealing passphrase from the environment; None when keys stay out of backups."""
        if not self.private_keys:
            return None
        value = environ.get(self.passphrase_env)
        if not value:
            raise BackupError(
                f"[backup] private_keys is true but the environment variable "
                f"{self.passphrase_env} is not set; no backup was made."
            )
        return value


Terminals = Annotated[list[TerminalConfig], AfterValidator(check_unique)]


class PlantFile(_Model):
    """``plant.toml`` as written (security, devices and tags have files of their own)."""

    plant: PlantInfo = PlantInfo()
    scan_classes: ScanClasses = Field(default_factory=_default_scan_classes)
    commands: CommandPolicy = CommandPolicy()
    terminal: Terminals = Field(default_factory=list, description="[[terminal]] entries")
    clock: ClockCheck = ClockCheck()
    storage: StorageCheck = StorageCheck()
    backup: BackupPolicy = BackupPolicy()
    change_control: ChangeControlPolicy = ChangeControlPolicy()


class PlantConfig(_Model):
    plant: PlantInfo = PlantInfo()
    security: SecurityPolicy = SecurityPolicy()
    scan_classes: ScanClasses = Field(default_factory=_default_scan_classes)
    commands: CommandPolicy = CommandPolicy()
    terminals: Terminals = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    tags: list[TagConfig] = Field(default_factory=list)
    alarms: list[AlarmConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    procedures: list[Procedure] = Field(default_factory=list)
    clock: ClockCheck = ClockCheck()
    storage: StorageCheck = StorageCheck()
    backup: BackupPolicy = BackupPolicy()
    change_control: ChangeControlPolicy = ChangeControlPolicy()
    _directory: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _admin_can_administer(self, info: ValidationInfo) -> PlantConfig:
        if "administer_users" not in self.security.roles.get("admin", []):
            raise ValueError("security.toml: roles.admin must keep 'administer_users'")
        if not (info.context and info.context.get("deferred_checks")):
            problems = cross_check(self.devices, self.tags, self.scan_classes)
            problems += check_cameras(self.cameras, self.devices, self.tags)
            if problems:
                raise ValueError("\n".join(p.render(None) for p in problems))
        return self

    @property
    def directory(self) -> Path | None:
        """The configuration directory this was loaded from (None for built-in defaults)."""
        return self._directory

    def file(self, name: str) -> str:
        """``name`` inside the configuration directory, as error messages show it."""
        return str(self._directory / name) if self._directory is not None else name


_FILES = {"plant.toml": "plant", "security.toml": "security"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc


def _describe(file: Path, error: ValidationError, prefix: tuple[str, ...]) -> str:
    lines = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        if loc[: len(prefix)] == list(prefix):
            loc = loc[len(prefix) :]
        path = ".".join(loc) or "(top level)"
        lines.append(f"{file}: {path}: {item['msg']}")
    return "\n".join(lines)


def load_config(directory: Path | None) -> PlantConfig:
    """Load and validate a configuration directory; ``None`` gives the built-in defaults."""
    if directory is None:
        return PlantConfig()
    if not directory.is_dir():
        raise ConfigError(f"{directory}: configuration directory not found")
    plant_path = directory / "plant.toml"
    security_path = directory / "security.toml"
    plant_data = _read_toml(plant_path) if plant_path.exists() else {}
    security_data = _read_toml(security_path) if security_path.exists() else {}
    try:
        security = SecurityPolicy.model_validate(security_data)
    except ValidationError as exc:
        raise ConfigError(_describe(security_path, exc, ())) from exc
    try:
        plant_file = PlantFile.model_validate(plant_data)
    except ValidationError as exc:
        raise ConfigError(_describe(plant_path, exc, ())) from exc
    problems: list[Problem] = []
    devices, tags, broken = read_devices_and_tags(directory, plant_file.scan_classes, problems)
    cameras = read_cameras(directory, devices, tags, problems, broken_devices=broken)
    meanings = security.signature.meanings
    names = [c.name for c in cameras]
    procedures = read_procedures(directory, tags, meanings, problems, names)
    if problems:
        raise ConfigError(render_problems(problems, directory))
    alarm_problems: list[Problem] = []
    alarms = read_alarms(directory, tags, alarm_problems)
    if alarm_problems:
        raise ConfigError("\n".join(p.render(directory) for p in alarm_problems))
    try:
        config = PlantConfig.model_validate(
            {
                "plant": plant_file.plant,
                "scan_classes": plant_file.scan_classes,
                "commands": plant_file.commands,
                "terminals": plant_file.terminal,
                "security": security,
                "devices": devices,
                "tags": tags,
                "alarms": alarms,
                "cameras": cameras,
                "procedures": procedures,
                "clock": plant_file.clock,
                "storage": plant_file.storage,
                "backup": plant_file.backup,
                "change_control": plant_file.change_control,
            },
            context=DEFERRED,
        )
    except ValidationError as exc:
        raise ConfigError(_describe(plant_path, exc, ())) from exc
    config._directory = directory
    return config


def json_schema() -> dict[str, Any]:
    return {
        "plant.toml": PlantFile.model_json_schema(),
        "security.toml": SecurityPolicy.model_json_schema(),
        DEVICES_FILE: DevicesFile.model_json_schema(),
        TAGS_FILE: TagsFile.model_json_schema(),
        ALARMS_FILE: AlarmsFile.model_json_schema(),
        CAMERAS_FILE: CamerasFile.model_json_schema(),
        f"{PROCEDURES_DIR}/*.toml": Procedure.model_json_schema(),
    }
