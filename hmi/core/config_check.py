"""Checking a proposed configuration file against the rest of the configuration.

A file is never valid alone: a tag names a device, an alarm names a tag, a
procedure names both. So a proposed text is checked the way the runtime
would load it: the configuration as the runtime read it at start, copied to
a temporary directory with that one file replaced, then ``load_config``.
Nothing is written to the configuration directory itself.

The loader's errors are lines of ``<path>: <key path>: <reason>``; they are
split here into (file, key, message) so a screen can put each at its key.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

from hmi.core.alarm_config import ALARMS_FILE
from hmi.core.api_types import ConfigDiff, ConfigProblem
from hmi.core.camera_config import CAMERAS_FILE
from hmi.core.config import load_config
from hmi.core.errors import ConfigError, HmiError
from hmi.core.plant_config import DEVICES_FILE, TAGS_FILE
from hmi.core.procedure_config import PROCEDURES_DIR

FIXED_FILES = (
    "plant.toml",
    DEVICES_FILE,
    TAGS_FILE,
    CAMERAS_FILE,
    ALARMS_FILE,
    "security.toml",
)
_PROCEDURE = re.compile(rf"{PROCEDURES_DIR}/[A-Za-z0-9][A-Za-z0-9_.\-]{{0,63}}\.toml")
TOP_LEVEL = "(top level)"
SYNTAX = "(TOML syntax)"


def check_name(name: str) -> str:
    """``name`` if it is a configuration file's name; no path can leave the directory."""
    if name in FIXED_FILES or _PROCEDURE.fullmatch(name):
        return name
    raise HmiError(
        f"{name!r} is not a configuration file; files are {', '.join(FIXED_FILES)} "
        f"and {PROCEDURES_DIR}/<name>.toml."
    )


def read_files(directory: Path | None) -> dict[str, str]:
    """The text of every configuration file present in ``directory`` (none for defaults)."""
    if directory is None:
        return {}
    names = [n for n in FIXED_FILES if (directory / n).is_file()]
    procedures = directory / PROCEDURES_DIR
    if procedures.is_dir():
        names += sorted(f"{PROCEDURES_DIR}/{p.name}" for p in procedures.glob("*.toml"))
    return {n: (directory / n).read_text(encoding="utf-8") for n in names}


def _skeleton(directory: Path, target: Path) -> None:
    """The directory's folders without their files: relative drop folders still exist."""
    shutil.copytree(
        directory,
        target,
        ignore=lambda d, names: [n for n in names if not (Path(d) / n).is_dir()],
        dirs_exist_ok=True,
    )


def _problems(error: ConfigError, root: Path, shown: str, default_file: str) -> list[ConfigProblem]:
    prefix = f"{root}/"
    out = []
    for line in str(error).splitlines():
        if not line.strip():
            continue
        line = line.replace(str(root), shown)
        if line.startswith(f"{shown}/"):
            rest = line[len(shown) + 1 :]
            file, _, rest = rest.partition(": ")
            key, sep, message = rest.partition(": ")
            if not sep:
                key, message = TOP_LEVEL, rest
            if message.startswith("not valid TOML") or key == "not valid TOML":
                key, message = SYNTAX, message
            out.append(ConfigProblem(file, key, message))
        else:
            out.append(ConfigProblem(default_file, TOP_LEVEL, line.removeprefix(prefix)))
    return out


def check_text(
    directory: Path | None, approved: dict[str, str], name: str, text: str
) -> list[ConfigProblem]:
    """Problems of the whole configuration with ``name`` replaced by ``text`` (none: valid)."""
    check_name(name)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [ConfigProblem(name, SYNTAX, str(exc))]
    return check_files(directory, {**approved, name: text}, name)


def check_files(
    directory: Path | None, files: dict[str, str], default_file: str = "plant.toml"
) -> list[ConfigProblem]:
    """Problems of a whole configuration set, loaded as the runtime would load it."""
    for name, text in files.items():
        check_name(name)
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return [ConfigProblem(name, SYNTAX, str(exc))]
    shown = str(directory) if directory is not None else "(configuration)"
    with tempfile.TemporaryDirectory(prefix="custos-config-check-") as tmp:
        root = Path(tmp) / "config"
        root.mkdir()
        if directory is not None and directory.is_dir():
            _skeleton(directory, root)
        for file, content in files.items():
            path = root / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        try:
            load_config(root)
        except ConfigError as exc:
            return _problems(exc, root, shown, default_file)
    return []


def diff_text(name: str, approved: str, text: str) -> ConfigDiff:
    """Unified diff of the approved text against ``text``, with its digest and size."""
    lines = []
    for line in difflib.unified_diff(
        approved.splitlines(keepends=True),
        text.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    ):
        lines.append(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n")
    diff = "".join(lines)
    data = diff.encode("utf-8")
    return ConfigDiff(name, diff, hashlib.sha256(data).hexdigest(), len(data))
