"""The electronic copies of a report (CSV, JSON, Parquet) and the manifest of every copy.

An electronic copy holds the same rows as the printed one, with times in ISO
8601 with their UTC offset. A run record gathers several views, so its copy is
flattened: a ``section`` column names the view each row came from, and the
columns are the union of the views' columns. The manifest, written beside the
file as ``<file>.manifest.json``, says what the file is (kind, filters, who
generated it and when, row count, the file's SHA-256) and carries the
integrity result and the signatures with their manifestations, so the copy can
be checked and its signatures read without the system.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hmi.core.clock import local_display
from hmi.core.reports import Plain, ReportData
from hmi.store.verify_images import file_sha256 as stored_file_sha256

MANIFEST_SUFFIX = ".manifest.json"


def iso(value: Plain) -> Plain:
    return value.isoformat() if isinstance(value, datetime) else value


def flat(report: ReportData) -> tuple[list[str], list[list[Plain]]]:
    """The report's rows as one table (with a ``section`` column for a run record)."""
    sections = report.sections
    if len(sections) == 1:
        return list(sections[0].columns), [list(r) for r in sections[0].rows]
    columns: dict[str, None] = {"section": None}
    for s in sections:
        columns.update(dict.fromkeys(s.columns))
    names = list(columns)
    rows: list[list[Plain]] = []
    for s in sections:
        for row in s.rows:
            values = dict(zip(s.columns, row, strict=True))
            values["section"] = s.title
            rows.append([values.get(c) for c in names])
    return names, rows


def write_csv(report: ReportData, out: Path) -> None:
    columns, rows = flat(report)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else iso(v) for v in row])


def write_parquet(report: ReportData, out: Path) -> None:
    columns, rows = flat(report)
    arrays = []
    for i, _ in enumerate(columns):
        values = [r[i] for r in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(iso(v)) for v in values]))
    table = pa.Table.from_arrays(arrays, names=columns)
    pq.write_table(table, out)


def describe(report: ReportData) -> dict[str, Any]:
    """What every copy says about itself (the manifest without the file's hash)."""
    request = report.request
    return {
        "report": request.kind,
        "title": report.title,
        "format": request.fmt,
        "filters": {
            "from": iso(request.start),
            "to": iso(request.end),
            "user": request.user_id,
            "run": request.run_id,
        },
        "period_shown": request.filters(),
        "generated_by": {"user_id": report.generated_by_id, "name": report.generated_by_name},
        "generated_at": report.generated_at.isoformat(),
        "generated_at_local": local_display(report.generated_at),
        "row_count": report.row_count,
        "sections": [
            {"title": s.title, "view": s.view, "rows": len(s.rows)} for s in report.sections
        ],
        "integrity": {
            "ok": report.integrity_ok,
            "summary": report.integrity_summary,
            "checks": [
                {
                    "view": i.view,
                    "first_seq": i.first,
                    "last_seq": i.last,
                    "rows": i.rows,
                    "ok": i.ok,
                    "summary": i.summary,
                    "checkpoint": i.checkpoint_seq,
                    "checkpoint_time": iso(i.checkpoint_time),
                    "failed_seqs": list(i.failed_seqs),
                }
                for i in report.integrity
            ],
        },
        "signatures": [
            {
                "signature_id": s.signature_id,
                "signer_id": s.signer_id,
                "signer_name": s.signer_name,
                "meaning": s.meaning,
                "reason": s.reason,
                "signed_at": s.signed_at.isoformat(),
                "manifestation": s.manifestation,
            }
            for s in report.signatures
        ],
    }


def write_json(report: ReportData, out: Path) -> None:
    """The rows as JSON objects per section, with the manifest embedded."""
    body = {
        "manifest": describe(report),
        "sections": [
            {
                "title": s.title,
                "view": s.view,
                "columns": list(s.columns),
                "rows": [
                    {c: iso(v) for c, v in zip(s.columns, row, strict=True)} for row in s.rows
                ],
            }
            for s in report.sections
        ],
    }
    out.write_text(json.dumps(body, indent=1, ensure_ascii=False, default=str), encoding="utf-8")


def file_sha256(path: Path) -> str:
    """The file's SHA-256 (hex), as the manifest names it."""
    return stored_file_sha256(path)[0]


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + MANIFEST_SUFFIX)


def write_manifest(report: ReportData, out: Path, final_name: str, sha256: str) -> None:
    """``out`` is where to write; ``final_name`` the name of the file it describes."""
    manifest = describe(report)
    manifest["file"] = final_name
    manifest["sha256"] = sha256
    out.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
