"""The rows of a report, read from the QA views, with their signatures and integrity.

A report reads the same documented views QA queries (docs/qa-guide.md), so a
report and a query of the same period give the same rows. Each view's rows
are checked with ``verify_range`` over the sequence range they span, against
the signed checkpoint that covers it, so the integrity line printed on a
report speaks of exactly the rows it includes. Filters are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from hmi.core.reports import IntegrityLine, Plain, Section, SignatureLine
from hmi.store.keys import KeyRing
from hmi.store.records_desk import plain
from hmi.store.tables import (
    ALARM_JOURNAL,
    AUDIT,
    CAPTURES,
    ESIGNATURES,
    SECURITY,
    ChainedTable,
)
from hmi.store.verify_range import verify_range

MAX_ROWS = 200_000
"""A report beyond this is refused: narrow the period (a PDF of more is unreadable)."""


@dataclass(frozen=True)
class KindSpec:
    table: ChainedTable
    time_column: str
    user_condition: str
    """SQL with ``?`` placeholders, each bound to the user ID."""


KIND_SPECS: dict[str, KindSpec] = {
    "audit": KindSpec(AUDIT, "ts", "actor_id = ?"),
    "alarms": KindSpec(ALARM_JOURNAL, "ts", "actor_id = ?"),
    "signatures": KindSpec(ESIGNATURES, "signed_at", "signer_id = ?"),
    "security": KindSpec(SECURITY, "ts", "(user_id = ? OR actor_id = ?)"),
    "captures": KindSpec(CAPTURES, "ts", "actor_id = ?"),
}

_SIGNATURE_COLUMNS = "signature_id, signer_id, signer_name, meaning, reason, signed_at"


class TooManyRows(Exception):
    """More rows match than a report may hold."""


def select(
    cur: duckdb.DuckDBPyConnection,
    title: str,
    table: ChainedTable,
    where: str,
    params: list[object],
) -> Section:
    """``SELECT *`` from the table's QA view, in sequence order, as plain values."""
    sql = f"SELECT * FROM {table.view}{' WHERE ' + where if where else ''} ORDER BY seq LIMIT ?"
    result = cur.execute(sql, [*params, MAX_ROWS + 1])
    columns = tuple(d[0] for d in result.description or ())
    rows = result.fetchall()
    if len(rows) > MAX_ROWS:
        raise TooManyRows(f"More than {MAX_ROWS} rows of {table.view} match")
    return Section(title, table.view, columns, tuple(_plain_row(r) for r in rows))


def _plain_row(row: tuple[Any, ...]) -> tuple[Plain, ...]:
    return tuple(plain(v) for v in row)


def period_rows(
    cur: duckdb.DuckDBPyConnection,
    kind: str,
    title: str,
    start: datetime | None,
    end: datetime | None,
    user_id: str | None,
) -> Section:
    """The rows of one kind of report: its view, the period and the optional user."""
    spec = KIND_SPECS[kind]
    conditions: list[str] = []
    params: list[object] = []
    if start is not None:
        conditions.append(f"{spec.time_column} >= ?")
        params.append(start)
    if end is not None:
        conditions.append(f"{spec.time_column} < ?")
        params.append(end)
    if user_id:
        conditions.append(spec.user_condition)
        params += [user_id] * spec.user_condition.count("?")
    return select(cur, title, spec.table, " AND ".join(conditions), params)


def signature_ids(sections: tuple[Section, ...]) -> list[str]:
    """Every signature ID the rows reference, in order of first reference."""
    seen: dict[str, None] = {}
    for section in sections:
        if "signature_ids" not in section.columns:
            continue
        at = section.columns.index("signature_ids")
        for row in section.rows:
            for sid in str(row[at] or "").split(","):
                if sid.strip():
                    seen.setdefault(sid.strip(), None)
    return list(seen)


def signatures(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> Section:
    """The ``esignatures`` rows with these IDs (the rows referenced by a report)."""
    if not ids:
        return Section("Signatures", ESIGNATURES.view, (), ())
    return select(cur, "Signatures", ESIGNATURES, "list_contains(?, signature_id)", [ids])


def signature_lines(section: Section) -> tuple[SignatureLine, ...]:
    """Manifestation lines from ``esignatures`` rows."""
    if not section.rows:
        return ()
    at = [section.columns.index(c.strip()) for c in _SIGNATURE_COLUMNS.split(",")]
    lines = []
    for row in section.rows:
        sid, signer, name, meaning, reason, signed_at = (row[i] for i in at)
        assert isinstance(signed_at, datetime)
        lines.append(
            SignatureLine(
                str(sid), str(signer), str(name), str(meaning), str(reason or ""), signed_at
            )
        )
    return tuple(lines)


def integrity(
    cur: duckdb.DuckDBPyConnection, keys: KeyRing, table: ChainedTable, section: Section
) -> IntegrityLine | None:
    """The integrity of the rows ``section`` holds of ``table`` (None if it holds none)."""
    if not section.rows:
        return None
    at = section.columns.index("seq")
    seqs = [int(str(r[at])) for r in section.rows]
    first, last = min(seqs), max(seqs)
    result = verify_range(cur, table, keys, first, last)
    cp = result.checkpoint
    return IntegrityLine(
        table.view,
        first,
        last,
        len(seqs),
        result.ok,
        result.summary,
        cp.seq if cp is not None else None,
        cp.ts if cp is not None else None,
        result.failed_seqs,
    )
