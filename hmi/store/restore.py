"""Restoring a backup: everything is verified before anything is written (11.10(c), OPS-3).

The backup's manifest, every file's SHA-256, every chain, checkpoint and
anchor of a copy of its database, and its chain heads against the manifest
are all checked first; a corrupted backup is refused with the exact file
named. The restore then writes a new data directory only, never over one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from hmi.core.errors import BackupError
from hmi.store.anchors import AnchorLog
from hmi.store.backup import MANIFEST, PARTIAL, _copy, chain_heads, check_files, read_manifest
from hmi.store.datadir import DataDir
from hmi.store.key_escrow import SEALED_KEYS_FILE, unseal
from hmi.store.keys import HMAC_KEY_FILE, PUBLIC_KEY_FILE, SIGNING_KEY_FILE, KeyRing
from hmi.store.verify import VerifyReport, verify_records


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


def restore(
    backup_dir: Path,
    new_data: Path,
    keys_dir: Path | None = None,
    *,
    passphrase: str | None = None,
) -> VerifyReport:
    """Verify ``backup_dir`` completely, then copy it and the keys into the new ``new_data``.

    The keys come from ``keys_dir`` (the plant's), or, without it, from the
    backup's sealed key file opened with ``passphrase``. Nothing is written to
    ``new_data`` before the backup has verified, and an existing ``new_data``
    (even empty) is refused: a restore never merges.
    """
    if new_data.exists():
        raise BackupError(
            f"{new_data} already exists; a restore only writes a new data directory.",
            title="Restore refused",
        )
    if keys_dir is not None:
        return _restore(backup_dir, new_data, keys_dir)
    sealed = backup_dir / "keys" / SEALED_KEYS_FILE
    if not sealed.is_file():
        raise BackupError(
            f"{backup_dir} holds no private keys; give the plant's keys directory (--keys).",
            title="Restore refused",
        )
    if passphrase is None:
        raise BackupError(f"{sealed} needs the backup passphrase.", title="Restore refused")
    check_files(backup_dir, read_manifest(backup_dir))
    with tempfile.TemporaryDirectory(prefix="custos-restore-keys-") as tmp:
        opened = Path(tmp) / "keys"
        unseal(sealed, passphrase, backup_dir / "keys" / PUBLIC_KEY_FILE, opened)
        return _restore(backup_dir, new_data, opened)


def _restore(backup_dir: Path, new_data: Path, keys_dir: Path) -> VerifyReport:
    report = verify_backup(backup_dir, keys_dir)
    staging = new_data.with_name(PARTIAL + new_data.name)
    try:
        shutil.copytree(backup_dir, staging)
        (staging / MANIFEST).unlink()
        keys = staging / "keys"
        with contextlib.suppress(FileNotFoundError):
            (keys / SEALED_KEYS_FILE).unlink()
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
