"""Backups of a data directory, taken while the store may be running (11.10(c), OPS-3).

Consistency: the database is copied as a file on the writer thread between
transactions (``Store.exclusive``), after a ``CHECKPOINT`` has folded the WAL
into it. No write can start while the copy runs, and ``anchors.log`` is copied
in the same window, so the anchors never name a checkpoint the copy lacks (a
later anchor would read as rows removed from the end). A byte copy keeps every
object the migrations made (guard triggers included), which ``EXPORT
DATABASE`` and ``COPY FROM DATABASE`` do not promise; writes wait for the copy,
at disk speed. Images are write-once and recorded after their file is
written, so copying them after the database never misses one the copy names.

Only the public checkpoint key is copied unless the plant asks otherwise.
The HMAC key and the signing key stay with the plant: a stolen backup cannot
be re-chained, and restoring one needs the keys directory (``hmi restore
--keys``). With ``[backup] private_keys = true`` they travel sealed under a
passphrase (``hmi.store.key_escrow``) and the restore asks for it instead.

A backup is built under ``.partial-NAME`` and renamed to ``NAME`` once its
manifest is written and synced: a backup killed midway never looks complete.
A partial folder older than ``STALE_PARTIAL_S`` is what such a kill left; the
next backup into the same place removes it and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from hmi.core.errors import BackupError
from hmi.core.records import AuditEntry, Origin
from hmi.store.datadir import DataDir
from hmi.store.db import Store
from hmi.store.key_escrow import SEALED_KEYS_FILE, seal
from hmi.store.keys import PUBLIC_KEY_FILE
from hmi.store.tables import CHAINED_TABLES
from hmi.store.verify_images import file_sha256

MANIFEST = "manifest.json"
PREFIX = "custos-backup-"
PARTIAL = ".partial-"
FORMAT = 1
STALE_PARTIAL_S = 3600.0
"""A partial backup untouched this long was left by a backup that was killed."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int
    bytes: int
    removed: tuple[Path, ...]
    """Older backups removed to keep the configured number."""
    abandoned: tuple[Path, ...] = ()
    """Partial backups a killed backup left behind, removed before this one."""
    private_keys: bool = False
    """Whether the private keys travel in this backup, sealed under a passphrase."""

    def summary(self) -> str:
        """One line for the audit trail and the console."""
        removed = ", ".join(p.name for p in self.removed) or "none"
        text = f"{self.files} files, {self.bytes} bytes; removed: {removed}"
        if self.abandoned:
            text += "; incomplete backups removed: " + ", ".join(p.name for p in self.abandoned)
        if self.private_keys:
            text += "; private keys sealed under the backup passphrase"
        return text


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    _fsync(dst)


def _snapshot(data_dir: DataDir, staging: Path) -> Any:
    """The exclusive part: returns a function for ``Store.exclusive``."""

    def copy(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, object]]:
        con.execute("CHECKPOINT")
        wal = data_dir.database.with_name(data_dir.database.name + ".wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise BackupError(f"{wal} could not be folded into the database; no backup made.")
        _copy(data_dir.database, staging / data_dir.database.name)
        if data_dir.anchors.exists():
            _copy(data_dir.anchors, staging / data_dir.anchors.name)
        return chain_heads(con)

    return copy


def chain_heads(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, object]]:
    """The last seq and digest (hex) of every chained table: what the manifest records."""
    heads: dict[str, dict[str, object]] = {}
    for name in CHAINED_TABLES:
        sql = f"SELECT seq, digest FROM {name} ORDER BY seq DESC LIMIT 1"
        row = con.execute(sql).fetchone()
        heads[name] = (
            {"seq": int(row[0]), "digest": bytes(row[1]).hex()}
            if row
            else {"seq": 0, "digest": None}
        )
    return heads


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def remove_abandoned(dest: Path, *, older_than_s: float = STALE_PARTIAL_S) -> tuple[Path, ...]:
    """Remove the partial backups nobody has written to for ``older_than_s`` seconds."""
    if not dest.is_dir():
        return ()
    cutoff = time.time() - older_than_s
    stale = sorted(
        p
        for p in dest.iterdir()
        if p.name.startswith(PARTIAL + PREFIX) and p.is_dir() and _newest_mtime(p) < cutoff
    )
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return tuple(stale)


def _newest_mtime(root: Path) -> float:
    return max([root.stat().st_mtime, *(p.stat().st_mtime for p in root.rglob("*"))])


def backup(
    store: Store,
    dest: Path,
    *,
    by: str,
    now: datetime,
    keep: int | None = None,
    passphrase: str | None = None,
) -> BackupResult:
    """Take one backup of ``store``'s data directory into ``dest``/custos-backup-TIME.

    With ``passphrase``, the private keys are sealed into the backup under it.
    """
    data_dir = store.data_dir
    name = PREFIX + now.strftime("%Y%m%dT%H%M%S%fZ")
    final = dest / name
    staging = dest / (PARTIAL + name)
    abandoned = remove_abandoned(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        if passphrase is not None:
            sealed = seal(data_dir.keys, store.keys.key_id, passphrase)
            (staging / "keys").mkdir()
            (staging / "keys" / SEALED_KEYS_FILE).write_bytes(sealed)
            _fsync(staging / "keys" / SEALED_KEYS_FILE)
        heads = store.exclusive(_snapshot(data_dir, staging))
        if data_dir.images.is_dir():
            for image in sorted(data_dir.images.rglob("*")):
                if image.is_file():
                    _copy(image, staging / "images" / image.relative_to(data_dir.images))
        _copy(data_dir.keys / PUBLIC_KEY_FILE, staging / "keys" / PUBLIC_KEY_FILE)
        files = _files(staging)
        manifest = {
            "format": FORMAT,
            "product": "Custos",
            "created_at": now.isoformat(),
            "by": by,
            "source": str(data_dir.root.resolve()),
            "key_id": store.keys.key_id,
            "private_keys": "sealed" if passphrase is not None else "none",
            "chain_heads": heads,
            "files": {
                str(p.relative_to(staging)): {"sha256": file_sha256(p)[0], "size": p.stat().st_size}
                for p in files
            },
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        _fsync(staging / MANIFEST)
        staging.rename(final)
        _fsync(dest)
    except (OSError, duckdb.Error) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"No backup was made in {dest}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    total = sum(int(f["size"]) for f in manifest["files"].values())
    removed = prune(dest, keep) if keep else ()
    return BackupResult(
        final, len(files) + 1, total, removed, abandoned, private_keys=passphrase is not None
    )


def complete_backups(dest: Path) -> list[Path]:
    """The complete backups in ``dest``, oldest first (names sort by time)."""
    if not dest.is_dir():
        return []
    return sorted(
        p for p in dest.iterdir() if p.name.startswith(PREFIX) and (p / MANIFEST).is_file()
    )


def prune(dest: Path, keep: int) -> tuple[Path, ...]:
    """Remove the oldest complete backups beyond ``keep``; partial ones are left to look at."""
    old = complete_backups(dest)[:-keep] if keep > 0 else []
    for path in old:
        shutil.rmtree(path)
    return tuple(old)


# -- checking a backup -------------------------------------------------------


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    path = backup_dir / MANIFEST
    if backup_dir.name.startswith(PARTIAL) or not path.is_file():
        raise BackupError(f"{path} is missing: {backup_dir} is not a complete backup.")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
        manifest["files"].items()
    except (ValueError, KeyError, AttributeError) as exc:
        raise BackupError(f"{path} is not a valid backup manifest: {exc}") from exc
    return manifest


def check_files(backup_dir: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names, with its size and SHA-256; and no file it does not name."""
    listed: dict[str, dict[str, Any]] = manifest["files"]
    for rel, expected in sorted(listed.items()):
        path = backup_dir / rel
        if not path.is_file():
            raise BackupError(f"{path} is missing from the backup.", title="Backup refused")
        if file_sha256(path) != (expected.get("sha256"), expected.get("size")):
            raise BackupError(
                f"{path} does not match the backup manifest (altered or damaged).",
                title="Backup refused",
            )
    for path in _files(backup_dir):
        if str(path.relative_to(backup_dir)) not in listed:
            raise BackupError(
                f"{path} is not named in the backup manifest.", title="Backup refused"
            )


def default_destination(data: Path) -> Path:
    """``backups`` beside the data directory: never inside it, which a restore would nest."""
    return data.resolve().parent / "backups"


def audit_entry(
    action: str,
    outcome: str,
    origin: Origin,
    target: Path,
    detail: str,
    actor: tuple[str | None, str | None] = (None, None),
) -> AuditEntry:
    """The audit row of a backup or restore (``done`` or ``failed``)."""
    return AuditEntry(
        action,
        outcome,
        actor[0],
        actor[1],
        origin,
        target=f"backup:{target}",
        detail=detail[:2000],
    )
