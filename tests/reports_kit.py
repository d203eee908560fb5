"""Helpers for the report tests: read a PDF's text, count a view's rows, edit the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from pypdf import PdfReader


def pdf_text(path: Path) -> tuple[int, str]:
    """The number of pages and the text of every page (pages joined by a form feed)."""
    reader = PdfReader(str(path))
    return len(reader.pages), "\f".join(page.extract_text() or "" for page in reader.pages)


def tamper(data_dir: Path, sql: str) -> None:
    """Change the closed data directory's database directly, past the guard triggers."""
    con = duckdb.connect(str(data_dir / "hmi.duckdb"))
    try:
        for name, table in con.execute(
            "SELECT trigger_name, table_name FROM duckdb_triggers() "
            "WHERE trigger_name LIKE '%no_update' OR trigger_name LIKE '%no_delete'"
        ).fetchall():
            con.execute(f"DROP TRIGGER {name} ON {table}")
        con.execute(sql)
    finally:
        con.close()


def read(data_dir: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(data_dir / "hmi.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()
