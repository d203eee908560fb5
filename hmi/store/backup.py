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

Only the public checkpoint key is copied. The HMAC key and the signing key
stay with the plant: a stolen backup cannot be re-chained, and restoring one
needs the keys directory (``hmi restore --keys``).

A backup is built under ``.partial-NAME`` and renamed to ``NAME`` once its
manifest is written and synced: a backup killed midway never looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from hmi.core.errors import BackupError
from hmi.core.records import AuditEntry, Origin
from hmi.store.anchors import AnchorLog
from hmi.store.datadir import DataDir
from hmi.store.db import Store
from hmi.store.keys import HMAC_KEY_FILE, PUBLIC_KEY_FILE, SIGNING_KEY_FILE, KeyRing
from hmi.store.tables import CHAINED_TABLES
from hmi.store.verify import VerifyReport, verify_records

MANIFEST = "manifest.json"
PREFIX = "custos-backup-"
PARTIAL = ".partial-"
FORMAT = 1


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int
    bytes: int
    removed: tuple[Path, ...]
    """Older backups removed to keep the configured number."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def backup(
    store: Store, dest: Path, *, by: str, now: datetime, keep: int | None = None
) -> BackupResult:
    """Take one backup of ``store``'s data directory into ``dest``/custos-backup-TIME."""
    data_dir = store.data_dir
    name = PREFIX + now.strftime("%Y%m%dT%H%M%S%fZ")
    final = dest / name
    staging = dest / (PARTIAL + name)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
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
            "chain_heads": heads,
            "files": {
                str(p.relative_to(staging)): {"sha256": _sha256(p), "size": p.stat().st_size}
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
    return BackupResult(final, len(files) + 1, total, removed)


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
        if path.stat().st_size != expected.get("size") or _sha256(path) != expected.get("sha256"):
            raise BackupError(
                f"{path} does not match the backup manifest (altered or damaged).",
                title="Backup refused",
            )
    for path in _files(backup_dir):
        if str(path.relative_to(backup_dir)) not in listed:
            raise BackupError(
                f"{path} is not named in the backup manifest.", title="Backup refused"
            )


def _keys_for(backup_dir: Path, keys_dir: Path) -> KeyRing:
    ring = KeyRing.load(keys_dir)
    pub = backup_dir / "keys" / PUBLIC_KEY_FILE
    if pub.read_bytes() != (keys_dir / PUBLIC_KEY_FILE).read_bytes():
        raise BackupError(
            f"The keys in {keys_dir} are not the keys of this backup ({pub} differs).",
            title="Backup refused",
        )
    return ring


def verify_backup(backup_dir: Path, keys_dir: Path) -> VerifyReport:
    """Check the manifest, then every chain, checkpoint and anchor of a copy of the backup.

    The copy is opened in a temporary directory, so the backup itself is never
    opened by DuckDB (which could write to it). Raises ``BackupError`` naming the
    first file or chain that does not hold.
    """
    manifest = read_manifest(backup_dir)
    check_files(backup_dir, manifest)
    _keys_for(backup_dir, keys_dir)
    with tempfile.TemporaryDirectory(prefix="custos-restore-check-") as tmp:
        copy = Path(tmp) / "data"
        shutil.copytree(backup_dir, copy)
        data_dir = DataDir(copy)
        con = duckdb.connect(str(data_dir.database), read_only=True)
        try:
            report = verify_records(
                con, keys_dir, AnchorLog(data_dir.anchors), images=data_dir.images
            )
            heads = chain_heads(con)
        finally:
            con.close()
    if not report.ok:
        first = "; ".join(str(p) for p in report.problems[:5])
        raise BackupError(
            f"{backup_dir / data_dir.database.name}: the records do not verify: {first}",
            title="Backup refused",
        )
    for name, found in heads.items():
        if manifest.get("chain_heads", {}).get(name) != found:
            raise BackupError(
                f"{backup_dir / data_dir.database.name}: chain {name} ends at seq "
                f"{found['seq']}, not where the manifest says.",
                title="Backup refused",
            )
    return report


def restore(backup_dir: Path, new_data: Path, keys_dir: Path) -> VerifyReport:
    """Verify ``backup_dir`` completely, then copy it and the keys into the new ``new_data``.

    Nothing is written to ``new_data`` before the backup has verified, and an
    existing ``new_data`` (even empty) is refused: a restore never merges.
    """
    if new_data.exists():
        raise BackupError(
            f"{new_data} already exists; a restore only writes a new data directory.",
            title="Restore refused",
        )
    report = verify_backup(backup_dir, keys_dir)
    staging = new_data.with_name(PARTIAL + new_data.name)
    try:
        shutil.copytree(backup_dir, staging)
        (staging / MANIFEST).unlink()
        keys = staging / "keys"
        os.chmod(keys, 0o700)
        for name in (HMAC_KEY_FILE, SIGNING_KEY_FILE):
            with contextlib.suppress(FileNotFoundError):
                (keys / name).unlink()
            _copy(keys_dir / name, keys / name)
            os.chmod(keys / name, 0o600)
        os.chmod(keys / PUBLIC_KEY_FILE, 0o600)
        staging.rename(new_data)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


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
