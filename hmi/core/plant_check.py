"""Checking and loading ``devices.toml`` and ``tags.toml``.

Each entry is first validated on its own (pydantic, with the entry's own
consistency checks deferred), then ``cross_check`` looks at the entries
together: duplicate names, references to devices and scan classes, and
whether each address and type suit the device's protocol. The Modbus checks
use ``drivers.modbus_points``, the code the driver itself uses, so an address
accepted here is one the driver accepts. Every problem is reported at once,
each with its file, key path and reason, so one round of edits can fix them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.codec import register_count
from drivers.modbus_points import BIT_TABLES, ModbusPoint, parse_address
from hmi.core.errors import ConfigError
from hmi.core.plant_config import (
    DEFERRED,
    DEVICE_KINDS,
    DEVICES_FILE,
    TAGS_FILE,
    Device,
    KeyProblems,
    ModbusDevice,
    OpcUaDevice,
    Problem,
    SerialLine,
    TagConfig,
    label,
)

_NODE_ID = re.compile(
    r"^(?:(?:ns=\d+|nsu=[^;]+);)?"
    r"(?:i=\d+|s=.+|g=[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|b=[A-Za-z0-9+/=]+)$"
)
_READ_ONLY = frozenset({"discrete_input", "input_register"})
_NOT_A_NODE_ID = (
    "is not an OPC UA node id; write ns=<index>;s=<name> (or i=, g=, b=), e.g. "
    "ns=2;s=MIC1.Focus (`hmi browse <endpoint>` lists them)"
)
_MODBUS_ONLY = "applies to Modbus registers; OPC UA values arrive typed, in the server's units"
_SUBSCRIBED = "OPC UA tags arrive by subscription at the device's sampling_ms; scan classes "
_SUBSCRIBED += "apply to polled (Modbus) tags"
_NOT_IN_FILES = (
    "passwords are never written in configuration files (they are versioned and shown in "
    'diffs); set password_env = "VARIABLE" (an environment variable of the runtime) or '
    'password_file = "path" (a file only the runtime account can read)'
)


def _modbus_tag(tag: TagConfig, device: ModbusDevice) -> KeyProblems:
    try:
        table, _ = parse_address(tag.address)
    except ValueError as exc:
        return [("address", str(exc))]
    kind = table.replace("_", " ")
    where = f"{tag.address!r} is {'an' if kind.startswith('i') else 'a'} {kind}"
    if table in BIT_TABLES and tag.type != "bool":
        count = register_count(tag.type) if tag.type != "string" else 0
        size = f"{count} registers" if count > 1 else "a register" if count else "a length"
        why = f'{where}, which holds one bit; {tag.type} needs {size}: use type = "bool" or '
        return [("type", why + "a register address")]
    if tag.type == "string" and tag.length < 1:
        return [("length", "a Modbus string needs length = its number of registers (2 bytes)")]
    if tag.writable and table in _READ_ONLY:
        why = f"{where}, which cannot be written; writable tags need a coil or holding register"
        return [("writable", why)]
    try:
        modbus_point(tag, device)
    except ValueError as exc:
        return [("address", str(exc))]
    return []


def modbus_point(tag: TagConfig, device: ModbusDevice) -> ModbusPoint:
    """The driver point of a Modbus tag (ValueError if the address or type cannot be one)."""
    table, address = parse_address(tag.address)
    byte_order = tag.byte_order or device.byte_order
    word_order = tag.word_order or device.word_order
    return ModbusPoint(tag.name, table, address, tag.type, byte_order, word_order,
                       tag.scale, tag.offset, tag.length, tag.writable)  # fmt: skip


def _opcua_tag(tag: TagConfig) -> KeyProblems:
    out: KeyProblems = []
    if not _NODE_ID.match(tag.address):
        out.append(("address", f"{tag.address!r} {_NOT_A_NODE_ID}"))
    defaults = {"byte_order": None, "word_order": None, "scale": 1.0, "offset": 0.0, "length": 0}
    out += [(key, _MODBUS_ONLY) for key, unset in defaults.items() if getattr(tag, key) != unset]
    if tag.scan_class is not None:
        out.append(("scan_class", _SUBSCRIBED))
    return out


def cross_check(
    devices: Sequence[Device],
    tags: Sequence[TagConfig],
    scan_classes: Mapping[str, float],
    *,
    broken_devices: Iterable[str] = (),
    tag_indexes: Sequence[int] | None = None,
    device_indexes: Sequence[int] | None = None,
) -> list[Problem]:
    """Every entry's own problems, and those between entries.

    ``broken_devices`` names devices that failed their own validation, so tags
    naming them are not reported a second time as naming an unknown device.
    The index sequences give each entry's position in its file.
    """
    problems: list[Problem] = []
    by_name: dict[str, tuple[int, Device]] = {}
    for i, dev in zip(device_indexes or range(len(devices)), devices, strict=True):
        where = label("device", i, dev.name)
        if dev.name in by_name:
            first = f"duplicate device name (first at device[{by_name[dev.name][0]}])"
            problems.append(Problem(DEVICES_FILE, f"{where}.name", first))
            continue
        by_name[dev.name] = (i, dev)
        problems += [Problem(DEVICES_FILE, f"{where}.{k}", r) for k, r in dev.problems()]
    broken = set(broken_devices)
    seen: dict[str, int] = {}
    for i, tag in zip(tag_indexes or range(len(tags)), tags, strict=True):
        found = tag.problems()
        if tag.name in seen:
            found.append(("name", f"duplicate tag name (first at tag[{seen[tag.name]}])"))
        seen.setdefault(tag.name, i)
        if tag.scan_class is not None and tag.scan_class not in scan_classes:
            known = ", ".join(scan_classes)
            found.append(("scan_class", f"unknown scan class {tag.scan_class!r}; plant.toml "
                          f"[scan_classes] has {known}"))  # fmt: skip
        entry = by_name.get(tag.device)
        if entry is None and tag.device not in broken:
            known = ", ".join(by_name) or f"none (no [[device]] in {DEVICES_FILE})"
            found.append(("device", f"unknown device {tag.device!r}; devices are {known}"))
        elif entry is not None and isinstance(entry[1], ModbusDevice):
            found += _modbus_tag(tag, entry[1])
        elif entry is not None:
            found += _opcua_tag(tag)
        where = label("tag", i, tag.name)
        problems += [Problem(TAGS_FILE, f"{where}.{key}", reason) for key, reason in found]
    return problems


# -- loading ------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc


def _entries(path: Path, key: str, problems: list[Problem]) -> list[tuple[int, Any]]:
    data = read_toml(path) if path.exists() else {}
    for other in data:
        if other != key:
            problems.append(Problem(path.name, other, f"unknown key; {path.name} holds [[{key}]]"))
    raw = data.get(key, [])
    if not isinstance(raw, list):
        problems.append(Problem(path.name, key, f"write each entry as a [[{key}]] table"))
        return []
    return list(enumerate(raw))


def _reason(item: Any, model: type[BaseModel]) -> str:
    if item["type"] == "extra_forbidden":
        return f"unknown key; {model.__name__} keys are {', '.join(model.model_fields)}"
    if item["type"] == "missing":
        return "required key is missing"
    return str(item["msg"])


def _validate(model: type[BaseModel], raw: Any, file: str, where: str, out: list[Problem]) -> Any:
    if not isinstance(raw, dict):
        out.append(Problem(file, where, "must be a table"))
        return None
    try:
        return model.model_validate(raw, context=DEFERRED)
    except ValidationError as exc:
        for item in exc.errors():
            path = ".".join(str(p) for p in item["loc"])
            sub = SerialLine if item["loc"][:1] == ("serial",) and len(item["loc"]) > 1 else model
            out.append(Problem(file, f"{where}.{path}" if path else where, _reason(item, sub)))
        return None


def _resolve(device: Device, where: str, directory: Path, out: list[Problem]) -> Device:
    """File paths relative to the configuration directory; certificate files must exist.

    A password file is only looked for when the drivers are built: it is a
    secret, often deployed to the runtime host alone.
    """
    if not isinstance(device, OpcUaDevice):
        return device
    update: dict[str, Path] = {}
    for key in ("certificate", "private_key", "server_certificate", "password_file"):
        path: Path | None = getattr(device, key)
        if path is not None:
            update[key] = full = path if path.is_absolute() else (directory / path).resolve()
            if key != "password_file" and not full.is_file():
                out.append(Problem(DEVICES_FILE, f"{where}.{key}", f"file not found: {full}"))
    return device.model_copy(update=update)


FILE_ORDER = (DEVICES_FILE, TAGS_FILE)
"""Files whose problems are listed first, in this order; other files follow by name."""


def _position(problem: Problem) -> tuple[int, str, int]:
    """Devices, then tags, then the files that refer to them, each in file order."""
    entry = re.match(r"\w+\[(\d+)\]", problem.key)
    rank = FILE_ORDER.index(problem.file) if problem.file in FILE_ORDER else len(FILE_ORDER)
    return rank, problem.file, int(entry.group(1)) if entry else -1


def render_problems(problems: Iterable[Problem], directory: Path | None) -> str:
    """One line per problem, ordered like the files, as ConfigError shows them."""
    return "\n".join(p.render(directory) for p in sorted(problems, key=_position))


def load_devices_and_tags(
    directory: Path, scan_classes: Mapping[str, float]
) -> tuple[list[Device], list[TagConfig]]:
    """Read ``devices.toml`` and ``tags.toml`` (a missing file means none), or raise ConfigError."""
    problems: list[Problem] = []
    devices, tags, _ = read_devices_and_tags(directory, scan_classes, problems)
    if problems:
        raise ConfigError(render_problems(problems, directory))
    return devices, tags


def read_devices_and_tags(
    directory: Path, scan_classes: Mapping[str, float], problems: list[Problem]
) -> tuple[list[Device], list[TagConfig], set[str]]:
    """Devices and tags that passed their own checks, and the names of devices that did not.

    Problems are added to ``problems`` rather than raised, so that files
    referring to devices and tags (cameras.toml) are checked in the same round.
    """
    devices: list[Device] = []
    d_index: list[int] = []
    broken: set[str] = set()
    for i, raw in _entries(directory / DEVICES_FILE, "device", problems):
        name = raw.get("name") if isinstance(raw, dict) else None
        where = label("device", i, name)
        model = None
        if isinstance(raw, dict):
            if "password" in raw:
                problems.append(Problem(DEVICES_FILE, f"{where}.password", _NOT_IN_FILES))
                raw = {k: v for k, v in raw.items() if k != "password"}
            kind = raw.get("kind")
            model = DEVICE_KINDS.get(kind) if isinstance(kind, str) else None
            if model is None:
                why = f'must be "modbus" or "opcua", not {kind!r}'
                problems.append(Problem(DEVICES_FILE, f"{where}.kind", why))
        device = _validate(model, raw, DEVICES_FILE, where, problems) if model else None
        if device is None:
            broken.update([name] if isinstance(name, str) else [])
            continue
        devices.append(_resolve(device, where, directory, problems))
        d_index.append(i)
    tags: list[TagConfig] = []
    t_index: list[int] = []
    for i, raw in _entries(directory / TAGS_FILE, "tag", problems):
        where = label("tag", i, raw.get("name") if isinstance(raw, dict) else None)
        tag = _validate(TagConfig, raw, TAGS_FILE, where, problems)
        if tag is not None:
            tags.append(tag)
            t_index.append(i)
    problems += cross_check(
        devices, tags, scan_classes,
        broken_devices=broken, tag_indexes=t_index, device_indexes=d_index,
    )  # fmt: skip
    return devices, tags, broken
