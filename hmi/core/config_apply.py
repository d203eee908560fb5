"""Configuration sets on disk and at the start of change control.

``write_set`` makes the configuration directory hold an approved version;
``baseline_entry`` is version 1 of a data directory; ``file_set_for`` is a
set with one file replaced, as the Engineer screen proposes it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hmi.core.config_versions import FileSet, canonical, changed_files, set_digest
from hmi.core.procedure_config import PROCEDURES_DIR
from hmi.core.records import ConfigVersionEntry, Origin


def write_set(directory: Path, old: FileSet, new: FileSet) -> None:
    """Make ``directory`` hold ``new``: changed files replaced atomically, dropped ones removed."""
    for name in changed_files(old, new):
        path = directory / name
        if name not in new:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new[name])
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def baseline_entry(
    files: FileSet, actor_id: str, actor_name: str, origin: Origin, detail: str
) -> ConfigVersionEntry:
    """Version 1 of a data directory: the configuration it was set up (or first run) with."""
    return ConfigVersionEntry(
        1,
        "baseline",
        actor_id,
        actor_name,
        origin,
        set_digest(files),
        files_json=canonical(files),
        changed_files=",".join(sorted(files)),
        reason="configuration in place when change control began",
        detail=detail,
    )


def file_set_for(files: FileSet, name: str, text: str) -> FileSet:
    """``files`` with ``name`` replaced by ``text`` (empty text for a procedure: removed)."""
    out = dict(files)
    if not text.strip() and name.startswith(f"{PROCEDURES_DIR}/"):
        out.pop(name, None)
    else:
        out[name] = text
    return out
