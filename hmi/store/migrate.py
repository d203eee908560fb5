"""Versioned schema migrations.

Migrations are the numbered ``migrations/NNNN_*.sql`` files, applied in order
in one transaction each; ``schema_meta`` records the version reached. A
database written by newer code (a higher version than this code knows) is
refused rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

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
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration {expected:04d} is missing before {migration.name}")
    return found


def code_version() -> int:
    return len(available())


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_meta'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'").fetchone()
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


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring the schema up to date; returns the names of the migrations applied."""
    version = check_not_newer(con)
    applied = []
    for migration in available():
        if migration.version <= version:
            continue
        con.execute("BEGIN")
        try:
            if migration.version == 1:
                con.execute("CREATE TABLE schema_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.execute(migration.sql)
            con.execute(
                "INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)",
                [str(migration.version)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.name)
    return applied


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM schema_meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])
