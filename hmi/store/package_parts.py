"""The parts of an inspection package read from the records: views, images, checkpoints.

Each writes its files under the package root and returns what the manifest
says about them. Split from ``hmi.store.package``, which puts them together.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from hmi.store import package_files as pf
from hmi.store.anchors import AnchorLog, Checkpoint
from hmi.store.qa import QA_VIEWS
from hmi.store.tables import CAPTURES
from hmi.store.verify_images import IMAGE_EXTENSIONS, file_sha256

TIME_COLUMNS = ("ts", "signed_at", "time")
"""A view's period is read from the first of these columns it has; without one it is whole."""

_CHECKPOINT = "SELECT seq, ts, heads, key_id, signature FROM checkpoints"


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    """Exclusive: records at ``start`` <= ts < ``end``."""


def sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def ts_literal(value: datetime) -> str:
    return f"TIMESTAMPTZ '{value.isoformat()}'"


def copy_query(cur: duckdb.DuckDBPyConnection, select: str, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet"
    cur.execute(f"COPY ({select}) TO {sql_path(path)} ({options})")


def count_rows(cur: duckdb.DuckDBPyConnection, select: str) -> int:
    row = cur.execute(f"SELECT count(*) FROM ({select})").fetchone()
    return int(row[0]) if row else 0


def _view_columns(cur: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = cur.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    views = {
        str(r[0])
        for r in cur.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'"
        ).fetchall()
    }
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        if table in views and table in QA_VIEWS:
            columns.setdefault(str(table), []).append(str(column))
    return columns


def export_views(
    cur: duckdb.DuckDBPyConnection, period: Period, root: Path
) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for view, columns in sorted(_view_columns(cur).items()):
        time_col = next((c for c in TIME_COLUMNS if c in columns), None)
        where = (
            f" WHERE {time_col} >= {ts_literal(period.start)} "
            f"AND {time_col} < {ts_literal(period.end)}"
            if time_col
            else ""
        )
        order = next((c for c in ("seq", time_col, columns[0]) if c in columns), columns[0])
        select = f"SELECT * FROM {view}{where} ORDER BY {order}"
        copy_query(cur, select, root / f"views/{view}.csv", "csv")
        copy_query(cur, select, root / f"views/{view}.parquet", "parquet")
        views[view] = {
            "rows": count_rows(cur, select),
            "time_column": time_col,
            "csv": f"views/{view}.csv",
            "parquet": f"views/{view}.parquet",
        }
    return views


def export_images(
    cur: duckdb.DuckDBPyConnection, period: Period, images: Path, root: Path, problems: list[str]
) -> int:
    rows = cur.execute(
        f"SELECT seq, sha256, format FROM {CAPTURES.name} WHERE ts >= ? AND ts < ? ORDER BY seq",
        [period.start, period.end],
    ).fetchall()
    copied: set[str] = set()
    for seq, sha, _fmt in rows:
        digest = bytes(sha).hex()
        found = [p for p in (images / f"{digest}.{e}" for e in IMAGE_EXTENSIONS) if p.is_file()]
        if not found:
            problems.append(f"{CAPTURES.name} seq {seq}: image file {images}/{digest}.* is missing")
            continue
        source = found[0]
        if file_sha256(source)[0] != digest:
            problems.append(f"{CAPTURES.name} seq {seq}: image file {source} was altered")
        if source.name not in copied:
            (root / "images").mkdir(exist_ok=True)
            shutil.copyfile(source, root / "images" / source.name)
            copied.add(source.name)
    return len(copied)


def export_checkpoints(
    cur: duckdb.DuckDBPyConnection, period: Period, covering: set[int], anchors: Path, root: Path
) -> list[int]:
    """The period's checkpoints, the first after it, and those covering each exported chain."""
    wanted = {
        int(r[0])
        for r in cur.execute(
            "SELECT seq FROM checkpoints WHERE ts >= ? AND ts < ?", [period.start, period.end]
        ).fetchall()
    }
    after = cur.execute(
        "SELECT seq FROM checkpoints WHERE ts >= ? ORDER BY seq LIMIT 1", [period.end]
    ).fetchone()
    if after is not None:
        wanted.add(int(after[0]))
    wanted |= covering
    lines = []
    for seq, ts, heads, key_id, signature in cur.execute(f"{_CHECKPOINT} ORDER BY seq").fetchall():
        if int(seq) in wanted:
            lines.append(Checkpoint(int(seq), ts, str(heads), str(key_id), bytes(signature)))
    (root / "checkpoints").mkdir()
    (root / pf.CHECKPOINTS).write_text("".join(c.to_line() + "\n" for c in lines))
    anchored = []
    for _, line in AnchorLog(anchors).read():
        try:
            if Checkpoint.from_line(line).seq in wanted:
                anchored.append(line)
        except (ValueError, KeyError):
            continue
    (root / pf.ANCHORS).write_text("".join(line + "\n" for line in anchored))
    return [c.seq for c in lines]
