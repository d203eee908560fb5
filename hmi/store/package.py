"""The inspection package (REC-2, REC-5/6, 11.10(b)): a period's records an inspector can check.

An inspector has no HMAC key (it is secret) and no access to the plant, so
the package's proof rests on Ed25519: ``manifest.json`` lists every file with
its SHA-256 and is signed with the checkpoint signing key (``manifest.sig``);
the signed checkpoints of the period are included, and the raw chained rows
(``chains/``) carry the digests those checkpoints vouch for. A holder of the
HMAC key (the plant's QA) can additionally recompute every exported chain.

Before anything is written the exported ranges are checked (``verify_range``
per chain, each image against its row). Failed records are still exported, so
an inspector sees them, but the manifest and ``SUMMARY.txt`` say FAILED and
the caller is told (``PackageResult.integrity_ok``).

Reports (PDF and the like) are "extra documents": callables that write files
into the package's ``reports/`` folder and return their paths. They are listed
and signed like every other file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from hmi.core.errors import HmiError, PackageError
from hmi.store import package_files as pf
from hmi.store.db import Store
from hmi.store.keys import PUBLIC_KEY_FILE
from hmi.store.package_parts import (
    Period,
    copy_query,
    count_rows,
    export_checkpoints,
    export_images,
    export_views,
)
from hmi.store.package_text import summary_text, verify_text
from hmi.store.tables import CHAINED_TABLES, HISTORY_BATCHES, ChainedTable
from hmi.store.verify_range import verify_range

__all__ = ["Exporter", "ExtraDocument", "PackageResult", "Period", "build_package", "check_out"]

ExtraDocument = Callable[[Path], list[Path]]
"""Writes files into the given ``reports/`` folder and returns their paths."""


@dataclass(frozen=True)
class Exporter:
    user_id: str
    full_name: str


@dataclass(frozen=True)
class PackageResult:
    path: Path
    files: int
    manifest_sha256: str
    fingerprint: str
    integrity_ok: bool
    integrity: tuple[str, ...]
    """One line per chain checked, then each problem found."""


def check_out(out: Path) -> None:
    """``out`` must be a new ``.zip``, or a directory that does not exist or is empty."""
    if out.suffix.lower() == ".zip":
        if out.exists():
            raise PackageError(f"{out} already exists; a package never overwrites a file.")
        if not out.parent.is_dir():
            raise PackageError(f"{out.parent} (the folder for {out.name}) does not exist.")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PackageError(f"{out} exists and is not an empty directory; choose a new one.")


# -- chains ------------------------------------------------------------------------


def _present(cur: duckdb.DuckDBPyConnection) -> set[str]:
    rows = cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _head_seq(table: str) -> str:
    return f"try_cast(regexp_extract(heads, '(^|;){table}:([0-9]+):', 2) AS BIGINT)"


def _chain_range(
    cur: duckdb.DuckDBPyConnection, table: ChainedTable, period: Period
) -> tuple[int, int, int | None]:
    """(first, last, covering checkpoint seq) of the rows to export; (0, 0, None) if none.

    The range runs from the period's first row to the head of the first signed
    checkpoint at or past its last row, so the exported chain reaches a row a
    signature vouches for.
    """
    row = cur.execute(
        f"SELECT min(seq), max(seq) FROM {table.name} WHERE ts >= ? AND ts < ?",
        [period.start, period.end],
    ).fetchone()
    if row is None or row[0] is None:
        return 0, 0, None
    first, last = int(row[0]), int(row[1])
    cover = cur.execute(
        f"SELECT seq, {_head_seq(table.name)} FROM checkpoints "
        f"WHERE {_head_seq(table.name)} >= ? ORDER BY seq LIMIT 1",
        [last],
    ).fetchone()
    if cover is None:
        return first, last, None
    return first, max(last, int(cover[1])), int(cover[0])


def _export_chain(
    cur: duckdb.DuckDBPyConnection, table: ChainedTable, period: Period, root: Path
) -> tuple[dict[str, Any], int | None]:
    first, last, cover = _chain_range(cur, table, period)
    entry: dict[str, Any] = {"file": None, "first_seq": first, "last_seq": last, "rows": 0}
    if not first:
        return entry, None
    select = f"SELECT * FROM {table.name} WHERE seq BETWEEN {first} AND {last} ORDER BY seq"
    rel = f"chains/{table.name}.parquet"
    copy_query(cur, select, root / rel, "parquet")
    before = cur.execute(f"SELECT digest FROM {table.name} WHERE seq = ?", [first - 1]).fetchone()
    entry.update(
        file=rel,
        rows=count_rows(cur, select),
        previous_digest=bytes(before[0]).hex() if before else None,
        covering_checkpoint=cover,
    )
    return entry, cover


def _export_history_values(
    cur: duckdb.DuckDBPyConnection, batches: dict[str, Any], root: Path
) -> dict[str, Any]:
    """The raw values of the exported history batches: each batch's SHA-256 vouches for them."""
    select = (
        "SELECT * FROM tag_history_values WHERE batch_seq BETWEEN "
        f"{int(batches['first_seq'])} AND {int(batches['last_seq'])} ORDER BY batch_seq, idx"
    )
    rel = "chains/tag_history_values.parquet"
    copy_query(cur, select, root / rel, "parquet")
    return {"file": rel, "rows": count_rows(cur, select)}


# -- the package -------------------------------------------------------------------


def _extras(root: Path, extras: Sequence[ExtraDocument]) -> list[str]:
    """Run each extra document; one that fails or writes outside ``reports/`` stops the export."""
    reports = root / pf.REPORTS
    reports.mkdir()
    written: list[str] = []
    for document in extras:
        name = getattr(document, "__name__", repr(document))
        try:
            paths = document(reports)
        except HmiError as exc:
            raise PackageError(f"extra document {name!r} failed: {exc.message}") from exc
        for path in paths:
            resolved = path.resolve()
            if not resolved.is_relative_to(reports.resolve()) or not resolved.is_file():
                raise PackageError(
                    f"extra document {name!r} returned {path}, which is not a file in {reports}."
                )
            written.append(pf.relative(root.resolve(), resolved))
    return written


def _fill(
    store: Store,
    root: Path,
    period: Period,
    by: Exporter,
    plant: str,
    extras: Sequence[ExtraDocument],
    now: datetime,
) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    checked: list[str] = []
    chains: dict[str, dict[str, Any]] = {}
    covering: set[int] = set()
    with store.reader() as cur:
        present = _present(cur)
        for table in CHAINED_TABLES.values():
            if table.name not in present:
                continue
            entry, cover = _export_chain(cur, table, period, root)
            chains[table.name] = entry
            if cover is not None:
                covering.add(cover)
            if entry["rows"]:
                result = verify_range(cur, table, store.keys, entry["first_seq"], entry["last_seq"])
                (checked if result.ok else problems).append(result.summary)
        history = chains.get(HISTORY_BATCHES.name)
        if history is not None and history["rows"] and "tag_history_values" in present:
            chains[HISTORY_BATCHES.name]["values"] = _export_history_values(cur, history, root)
        views = export_views(cur, period, root)
        images = export_images(cur, period, store.data_dir.images, root, problems)
        checkpoints = export_checkpoints(cur, period, covering, store.data_dir.anchors, root)
    (root / "keys").mkdir()
    shutil.copyfile(store.data_dir.keys / PUBLIC_KEY_FILE, root / pf.PUBLIC_KEY)
    reports = _extras(root, extras)
    manifest: dict[str, Any] = {
        "format": pf.FORMAT,
        "product": "Custos",
        "plant": plant,
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "generated": {"at": now.isoformat(), "by_id": by.user_id, "by_name": by.full_name},
        "public_key_fingerprint": store.keys.key_id,
        "integrity": {"ok": not problems, "checked": checked, "problems": problems},
        "chains": chains,
        "views": views,
        "checkpoints": checkpoints,
        "images": images,
        "reports": reports,
    }
    (root / pf.VERIFY_MD).write_text(verify_text())
    (root / pf.SUMMARY).write_text(summary_text(manifest))
    manifest["files"] = pf.file_entries(root)
    return manifest, problems


def build_package(
    store: Store,
    out: Path,
    period: Period,
    by: Exporter,
    *,
    plant: str,
    extras: Sequence[ExtraDocument] = (),
) -> PackageResult:
    """Write the package for ``period`` to ``out`` (a directory, or a file ending in .zip)."""
    check_out(out)
    if period.end <= period.start:
        raise PackageError(
            f"the period is empty: --to ({period.end.isoformat()}) must be after --from "
            f"({period.start.isoformat()})."
        )
    store.checkpoint_now()  # so the newest exported rows are under a signed checkpoint too
    now = store.clock.now()
    staging = out.parent / f".partial-{out.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        manifest, problems = _fill(store, staging, period, by, plant, extras, now)
        data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
        (staging / pf.MANIFEST).write_bytes(data)
        (staging / pf.SIGNATURE).write_text(store.keys.sign(data).hex() + "\n")
        if out.suffix.lower() == ".zip":
            pf.write_zip(staging, out)
            shutil.rmtree(staging)
        else:
            if out.exists():
                out.rmdir()  # empty, checked above
            staging.rename(out)
    except (OSError, duckdb.Error) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackageError(f"No package was written to {out}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PackageResult(
        out,
        len(manifest["files"]) + 2,
        hashlib.sha256(data).hexdigest(),
        store.keys.key_id,
        not problems,
        tuple(manifest["integrity"]["checked"]) + tuple(problems),
    )
