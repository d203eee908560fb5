"""Devices and tags: the models of ``devices.toml`` and ``tags.toml``.

A tag's meaning depends on its device (a Modbus address and type must fit the
register table; an OPC UA address is a node id), so entries are checked in
two passes: each entry on its own here, then against each other and the
devices in ``hmi.core.plant_check``. Every problem names the file, the key
path as the engineer wrote it (``tag[3] (BR101.TEMP).device``, entries
counted from 0) and the reason.

Passwords never live in these files: they are under change control, shown in
diffs and copied into backups. A device names an environment variable
(``password_env``) or a file (``password_file``) instead; ``hmi.plant``
reads it when the drivers are built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from drivers.codec import DType

DEVICES_FILE = "devices.toml"
TAGS_FILE = "tags.toml"
DEFAULT_SCAN_CLASS = "normal"
DEFAULT_SCAN_CLASSES: dict[str, float] = {"fast": 0.5, "normal": 1.0, "slow": 5.0}
DEFERRED = {"deferred_checks": True}
"""Validation context of the loader, which runs the consistency checks itself to name files."""

Order = Literal["big", "little"]
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$"
TAG_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$"
KeyProblems = list[tuple[str, str]]
"""(key inside the entry, reason) pairs."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the configuration: where, and why."""

    file: str
    key: str
    reason: str

    def render(self, directory: Path | None) -> str:
        where = str(directory / self.file) if directory is not None else self.file
        return f"{where}: {self.key}: {self.reason}"


def label(kind: str, index: int, name: object) -> str:
    """``tag[3] (BR101.TEMP)``: how an entry is named in messages."""
    return f"{kind}[{index}] ({name})" if isinstance(name, str) and name else f"{kind}[{index}]"


def _check(problems: Sequence[tuple[str, str]], info: ValidationInfo) -> None:
    """Raise the entry's own problems, unless the loader will report them with file names."""
    if problems and not (info.context and info.context.get("deferred_checks")):
        raise ValueError("; ".join(f"{key}: {reason}" for key, reason in problems))


# -- devices ------------------------------------------------------------------------------


class SerialLine(_Model):
    """Modbus RTU on a serial port (``port`` may also be ``socket://host:port``)."""

    port: str = Field(min_length=1)
    baudrate: int = Field(19200, gt=0)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class ModbusDevice(_Model):
    """A Modbus TCP device (``host``), or Modbus RTU with a ``[device.serial]`` table."""

    kind: Literal["modbus"]
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=255, description="Modbus unit (slave) ID")
    timeout_s: float = Field(1.0, gt=0, le=60)
    max_gap: int = Field(10, ge=0, le=124, description="unused registers one read may span")
    byte_order: Order = Field("big", description="default byte order inside a register")
    word_order: Order = Field("big", description="default register order inside a value")
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    serial: SerialLine | None = None

    def problems(self) -> KeyProblems:
        if self.serial is None and not self.host:
            return [("host", "needs host (Modbus TCP) or a [device.serial] table (Modbus RTU)")]
        if self.serial is not None and self.host:
            return [("host", "a device on a serial line has no host; remove host or serial")]
        return []

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ModbusDevice:
        _check(self.problems(), info)
        return self


_NEEDS_POLICY = 'needs security_policy = "Basic256Sha256"'
_NEEDS_MODE = 'Basic256Sha256 needs security_mode "Sign" or "SignAndEncrypt"'
_NEEDS_KEYS = "Basic256Sha256 needs the client's certificate and private_key files"


class OpcUaDevice(_Model):
    """An OPC UA server; file paths are relative to the configuration directory."""

    kind: Literal["opcua"]
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    endpoint: str = Field(pattern=r"^opc\.tcp://.+", description="opc.tcp://host:port/path")
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = Field(None, description="client certificate (DER)")
    private_key: Path | None = Field(None, description="client private key (PEM)")
    server_certificate: Path | None = Field(None, description="pins the server's certificate")
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable with the password")
    password_file: Path | None = Field(None, description="file holding the password")
    sampling_ms: float = Field(100.0, ge=0)
    publishing_ms: float = Field(200.0, gt=0)
    timeout_s: float = Field(4.0, gt=0, le=120)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)

    def problems(self) -> KeyProblems:
        out: KeyProblems = []
        secure = self.security_policy != "None"
        if secure and self.security_mode == "None":
            out.append(("security_mode", _NEEDS_MODE))
        if not secure and self.security_mode != "None":
            out.append(("security_mode", f'"{self.security_mode}" {_NEEDS_POLICY}'))
        if secure:
            out += [
                (k, _NEEDS_KEYS) for k in ("certificate", "private_key") if not getattr(self, k)
            ]
        sources = [k for k in ("password_env", "password_file") if getattr(self, k) is not None]
        if self.username is not None and not sources:
            out.append(("username", "needs password_env or password_file for the password"))
        if len(sources) == 2:
            out.append(("password_file", "give password_env or password_file, not both"))
        if self.username is None and sources:
            out.append((sources[0], "a password needs a username"))
        return out

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> OpcUaDevice:
        _check(self.problems(), info)
        return self


Device = Annotated[ModbusDevice | OpcUaDevice, Field(discriminator="kind")]
DEVICE_KINDS: dict[str, type[ModbusDevice] | type[OpcUaDevice]] = {
    "modbus": ModbusDevice,
    "opcua": OpcUaDevice,
}


# -- tags ---------------------------------------------------------------------------------


class TagConfig(_Model):
    """One tag; ``low``/``high`` are the setpoint limits and the span of ``deadband_percent``."""

    name: str = Field(pattern=TAG_PATTERN)
    device: str
    address: str = Field(min_length=1)
    type: DType
    length: int = Field(0, ge=0, le=125, description="registers of a Modbus string")
    byte_order: Order | None = Field(None, description="Modbus only; the device's if omitted")
    word_order: Order | None = Field(None, description="Modbus only; the device's if omitted")
    scale: float = Field(1.0, description="engineering value = raw × scale + offset (Modbus)")
    offset: float = 0.0
    units: str = ""
    writable: bool = False
    low: float | None = None
    high: float | None = None
    rate_of_change: float | None = Field(None, gt=0, description="largest setpoint change per s")
    esign: Literal["none", "single", "double"] | None = Field(
        None, description="signatures a write needs; the command type's default if omitted"
    )
    area: str = ""
    equipment: str = ""
    description: str = ""
    deadband: float | None = Field(None, ge=0, description="logging deadband, engineering units")
    deadband_percent: float | None = Field(None, ge=0, le=100, description="% of high - low")
    scan_class: str | None = Field(None, description="polled devices only; 'normal' if omitted")

    @property
    def numeric(self) -> bool:
        return self.type not in ("bool", "string")

    @property
    def absolute_deadband(self) -> float:
        """The logging deadband in engineering units (0: every change is logged)."""
        if self.deadband_percent is not None and self.low is not None and self.high is not None:
            return (self.high - self.low) * self.deadband_percent / 100.0
        return self.deadband or 0.0

    def problems(self) -> KeyProblems:
        out: KeyProblems = []
        if self.type != "string" and self.length:
            out.append(("length", f"only string tags have a length, not {self.type}"))
        if not self.numeric:
            if self.scale != 1.0 or self.offset != 0.0:
                out.append(("scale", f"scale and offset do not apply to {self.type} tags"))
            for key in ("low", "high", "rate_of_change", "deadband", "deadband_percent"):
                if getattr(self, key) is not None:
                    why = "every change is logged" if "deadband" in key else "not a number"
                    out.append((key, f"does not apply to a {self.type} tag ({why})"))
            return out
        if self.writable and (self.low is None or self.high is None):
            missing = "low" if self.low is None else "high"
            out.append((missing, "a writable numeric tag needs setpoint limits low and high"))
        if self.low is not None and self.high is not None and self.low >= self.high:
            out.append(("high", f"must be above low ({self.high:g} <= {self.low:g})"))
        if self.deadband is not None and self.deadband_percent is not None:
            out.append(("deadband_percent", "give deadband or deadband_percent, not both"))
        elif self.deadband_percent is not None and (self.low is None or self.high is None):
            out.append(("deadband_percent", "needs low and high (it is a percentage of the span)"))
        if self.rate_of_change is not None and not self.writable:
            out.append(("rate_of_change", "applies to writable tags only"))
        return out

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> TagConfig:
        _check(self.problems(), info)
        return self


class DevicesFile(_Model):
    """``devices.toml``: one ``[[device]]`` table per device."""

    device: list[Device] = Field(default_factory=list)


class TagsFile(_Model):
    """``tags.toml``: one ``[[tag]]`` table per tag."""

    tag: list[TagConfig] = Field(default_factory=list)
