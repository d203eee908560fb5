"""A deliberate change to one chained row, for the operational qualification's tamper check.

Part 11 asks that altered records be detectable (11.10(a)); the OQ proves it
by doing what an attacker with file access would do: drop the guard trigger
and update a row directly in the database file, then run ``verify``. The OQ
only ever calls this on a restored copy in its scratch directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def alter_chained_row(database: Path, table: str, seq: int, column: str, value: str) -> int:
    """Set ``column`` of the row ``seq`` of ``table`` to ``value``; returns rows changed."""
    for name in (table, column):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a plain identifier: {name!r}")
    con = duckdb.connect(str(database))
    try:
        con.execute(f"DROP TRIGGER {table}_no_update ON {table}")
        changed = con.execute(
            f"UPDATE {table} SET {column} = ? WHERE seq = ? RETURNING seq", [value, seq]
        ).fetchall()
        return len(changed)
    finally:
        con.close()
