"""The configuration hash: one SHA-256 that names a configuration directory's content.

Installation qualification records it, and configuration change control
compares the running configuration against the approved one with it, so both
must compute it the same way: every ``*.toml`` file under the directory (the
configuration proper, not camera drop folders or editor leftovers), as
``{relative POSIX path: text}``, serialised as JSON with sorted keys and no
insignificant whitespace, then hashed. Line endings are normalised to ``\\n``
so that a checkout on another platform hashes the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hmi.core.errors import ConfigError

PATTERN = "*.toml"


def config_files(directory: Path) -> dict[str, str]:
    """``{relative path: text}`` of every configuration file under ``directory``."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a configuration directory.")
    out: dict[str, str] = {}
    for path in sorted(directory.rglob(PATTERN)):
        if not path.is_file():
            continue
        name = path.relative_to(directory).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason}).") from None
        out[name] = text.replace("\r\n", "\n")
    return out


def canonical_config(files: dict[str, str]) -> bytes:
    return json.dumps(files, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def config_hash(directory: Path) -> str:
    """SHA-256 (hex) of the configuration in ``directory``; see the module docstring."""
    return hashlib.sha256(canonical_config(config_files(directory))).hexdigest()
