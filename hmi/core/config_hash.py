"""The configuration hash: one SHA-256 that names a configuration directory's content.

Installation qualification records it, and configuration change control
compares the configuration on disk with the approved version by it, so both
compute it one way: the configuration files change control knows
(``config_check.read_files``: the fixed files and ``procedures/*.toml``; camera
drop folders, notes and editor leftovers are not configuration), as
``{relative POSIX path: text}`` exactly as read, serialised as JSON with sorted
keys and no insignificant whitespace (``config_versions.canonical``), then
hashed. The hash IQ records for an installed plant is therefore the
``config_sha256`` of its approved version in ``config_versions``.
"""

from __future__ import annotations

from pathlib import Path

from hmi.core.config_check import read_files
from hmi.core.config_versions import set_digest
from hmi.core.errors import ConfigError


def config_files(directory: Path) -> dict[str, str]:
    """``{relative path: text}`` of every configuration file in ``directory``."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a configuration directory.")
    try:
        return read_files(directory)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{directory}: a configuration file is not UTF-8 text ({exc.reason})."
        ) from None


def config_hash(directory: Path) -> str:
    """SHA-256 (hex) of the configuration in ``directory``; see the module docstring."""
    return set_digest(config_files(directory))
