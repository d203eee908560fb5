"""Versioned schema migrations.

Migrations are the numbered ``migrations/NNNN_*.sql`` files, applied in order
in one transaction each. ``schema_migrations`` records each one applied, so
a migration numbered below one already applied (work merged out of order)
is still applied; ``schema_meta`` keeps the highest version reached. A
database written by newer code (a higher version than this code knows) is
refused rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import duckdb

from hmi.core.errors import DataDirectoryError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("hmi.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {[m.name for m in found]}")
    return found


def code_version() -> int:
    return max((m.version for m in available()), default=0)


def _first(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row, reading the result to its end.

    ``fetchone()`` leaves the rest of a result pending, and with it the
    connection's transaction open; on the store's base connection that open
    transaction keeps DuckDB from checkpointing (so backups of a running
    store fail) once any row has been updated.
    """
    rows = result.fetchall()
    return rows[0] if rows else None


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = _first(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_meta'"
        )
    )
    if not exists or not exists[0]:
        return 0
    row = _first(con.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'"))
    return int(row[0]) if row else 0


def check_not_newer(con: duckdb.DuckDBPyConnection) -> int:
    version = current_version(con)
    if version > code_version():
        raise DataDirectoryError(
            f"This database has schema version {version}, written by a newer Custos; this "
            f"installation understands versions up to {code_version()}. Open it with the newer "
            "version; nothing was changed.",
            title="Newer database",
        )
    return version


def _applied_versions(con: duckdb.DuckDBPyConnection, version: int) -> set[int]:
    exists = _first(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        )
    )
    if exists and exists[0]:
        return {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    if version:
        # Written before migrations were recorded one by one: versions 1..N were contiguous.
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR)")
        for v in range(1, version + 1):
            con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [v, f"{v:04d}"])
        return set(range(1, version + 1))
    return set()


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring the schema up to date; returns the names of the migrations applied."""
    version = check_not_newer(con)
    done = _applied_versions(con, version)
    applied: list[str] = []
    for migration in available():
        if migration.version in done:
            continue
        con.execute("BEGIN")
        try:
            if not done and not applied:
                con.execute("CREATE TABLE schema_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
                con.execute(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR)"
                )
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?)", [migration.version, migration.name]
            )
            con.execute(
                "INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)",
                [str(max(version, migration.version))],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        version = max(version, migration.version)
        applied.append(migration.name)
    return applied


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = _first(con.execute("SELECT value FROM schema_meta WHERE key = ?", [key]))
    return None if row is None else str(row[0])
