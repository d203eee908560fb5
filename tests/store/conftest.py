"""Fixtures for the record store tests: real DuckDB files in tmp_path, no mocks.

``store``       a fresh data directory from ``Store.create`` with a ``FakeClock``.
``fill``        fills the chains (audit, e-signature, security, QA query rows) and closes
                the store; every e-signature forces a checkpoint.
``filled_dir``  a private copy of a filled, closed data directory (built once per session).
``tamper``      edits the database file directly, as an attacker with file access would:
                drops the guard triggers, then runs SQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hmi.core.audit import Kind
from hmi.core.clock import FakeClock
from hmi.core.tags import Quality, TagChange, TagScalar
from hmi.records.images import ImageStore
from hmi.store.db import Appended, Store
from hmi.store.history import write_batch
from hmi.store.tables import (
    AUDIT,
    CAPTURES,
    CHAINED_TABLES,
    ESIGNATURES,
    HISTORY_BATCHES,
    QA_QUERIES,
    SECURITY,
)

# Texts that would break a naive encoding: separators, the NULL marker, newlines,
# multi-byte characters, the empty string and text that looks like an encoded field.
TRICKY_TEXT = ("pH | 7 ~ ok: yes", "line 1\nline 2\r\n", "", "Größe µS/cm ✓ 温度", "s5:x|i3|~")

DEFAULT_AUDIT = 12
DEFAULT_OTHERS = 8
"""Rows per chain the fill writes by default (8 for chains registered later, too)."""


@dataclass(frozen=True)
class Filled:
    root: Path
    counts: dict[str, int]
    """Rows written per chained table (seq runs 1..count)."""
    rows: dict[str, list[dict[str, object]]]
    """The rows as passed to ``append`` (without seq/ts), in seq order."""
    nullable: dict[str, set[str]]
    """Per chained table, the columns the schema allows to be NULL."""


def nullable_columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Per chained table, the columns the schema allows to be NULL."""
    found: dict[str, set[str]] = {name: set() for name in CHAINED_TABLES}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE is_nullable = 'YES'"
    ).fetchall():
        if table in found:
            found[table].add(column)
    return found


def make_row(table: str, i: int, nullable: set[str]) -> dict[str, object]:
    """Row ``i`` (1-based) of ``table``: even rows fill every column, odd rows leave the
    nullable ones NULL; text values contain ``-`` and separator characters."""
    spec = CHAINED_TABLES[table]
    row: dict[str, object] = {}
    for name, kind in spec.columns:
        if name in ("seq", "ts"):
            continue
        if i % 2 == 1 and name in nullable:
            row[name] = None
        elif kind is Kind.INT:
            row[name] = i * 1000 + 7
        elif kind is Kind.TEXT:
            row[name] = f"{name}-{i} {TRICKY_TEXT[i % len(TRICKY_TEXT)]}"
        elif kind is Kind.BOOL:
            row[name] = i % 4 == 0
        elif kind is Kind.TIMESTAMP:
            row[name] = datetime(2025, 12, 31, tzinfo=UTC) + timedelta(hours=i, microseconds=i)
        else:
            row[name] = bytes([i, 0, 255, ord("|")])
    return row


def history_changes(i: int) -> list[TagChange]:
    """The values of history batch ``i``: ``i + 1`` changes of every kind of value."""
    at = datetime(2026, 1, 5, 7, tzinfo=UTC) + timedelta(minutes=i)
    values: list[TagScalar | None] = [
        20.5 + i,
        i,
        i % 2 == 0,
        f"lot-{i} {TRICKY_TEXT[i % 5]}",
        None,
    ]
    return [
        TagChange(
            f"T{k % 3}",
            values[k % len(values)],
            Quality.GOOD if k % 4 else Quality.UNCERTAIN,
            None if k % 2 else at,
            at + timedelta(microseconds=k),
            "op1" if k == 1 else "device:plc1",
            "" if k % 3 else TRICKY_TEXT[k % 5],
            k == 2,
        )
        for k in range(i + 1)
    ]


def stored_image_fields(store: Store, i: int) -> dict[str, object]:
    """``sha256`` and ``size`` of an image file stored for capture row ``i``."""
    stored = ImageStore(store.data_dir.images).put(f"fill image {i}".encode(), "png")
    return {"sha256": bytes.fromhex(stored.sha256), "size": stored.size}


def append_row(
    store: Store, table: str, i: int, nullable: set[str]
) -> tuple[dict[str, object], Appended]:
    """Append row ``i`` of ``table``. A history batch row only exists with its values (verify
    checks them against it), so it is written as the history writer writes it."""
    if table == HISTORY_BATCHES.name:
        changes = history_changes(i)
        return {"row_count": len(changes)}, write_batch(store, changes)
    row = make_row(table, i, nullable)
    if table == CAPTURES.name:  # verify checks the image file each capture row names
        row.update(stored_image_fields(store, i))
    return row, store.append(table, row)


def fill_store(
    store: Store,
    clock: FakeClock,
    *,
    audit: int = DEFAULT_AUDIT,
    esignatures: int = DEFAULT_OTHERS,
    security: int = DEFAULT_OTHERS,
    qa: int = DEFAULT_OTHERS,
    others: int = DEFAULT_OTHERS,
) -> Filled:
    """Append rows to every chain, interleaved, advancing the clock between writes; then close.

    Each write waits for its commit, so seq numbers follow the order below and every
    e-signature row gets a checkpoint of its own (plus one at close).
    """
    wanted = {name: others for name in CHAINED_TABLES}
    wanted.update(
        {
            AUDIT.name: audit,
            ESIGNATURES.name: esignatures,
            SECURITY.name: security,
            QA_QUERIES.name: qa,
        }
    )
    with store.reader() as cur:
        nullable = nullable_columns(cur)
    written: dict[str, list[dict[str, object]]] = {name: [] for name in CHAINED_TABLES}
    order = [AUDIT.name, AUDIT.name, SECURITY.name, ESIGNATURES.name, QA_QUERIES.name]
    order += [name for name in CHAINED_TABLES if name not in order]
    step = 0
    while any(len(written[t]) < n for t, n in wanted.items()):
        table = order[step % len(order)]
        step += 1
        if len(written[table]) >= wanted[table]:
            continue
        clock.advance(timedelta(seconds=1, microseconds=123_457))
        row, appended = append_row(store, table, len(written[table]) + 1, nullable[table])
        written[table].append(row)
        assert appended.seq == len(written[table])
    root = store.data_dir.root
    store.close()
    return Filled(root, {t: len(rows) for t, rows in written.items()}, written, nullable)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_root: Path, clock: FakeClock) -> Iterator[Store]:
    s = Store.create(data_root, clock=clock)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def fill() -> Callable[..., Filled]:
    """``fill(store, clock, audit=12, esignatures=8, security=8, qa=8)``: fill the chains
    and close the store; returns what was written."""
    return fill_store


@pytest.fixture(scope="session")
def filled_template(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    clock = FakeClock()
    root = tmp_path_factory.mktemp("template") / "data"
    return fill_store(Store.create(root, clock=clock), clock)


@pytest.fixture
def filled(tmp_path: Path, filled_template: Filled) -> Filled:
    """A private copy of a filled, closed data directory."""
    root = tmp_path / "data"
    shutil.copytree(filled_template.root, root)
    return Filled(
        root, dict(filled_template.counts), filled_template.rows, filled_template.nullable
    )


@pytest.fixture
def filled_dir(filled: Filled) -> Path:
    return filled.root


def drop_guards(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every ``<table>_no_update`` / ``<table>_no_delete`` guard trigger (one commit)."""
    con.execute("BEGIN")
    for name, table in con.execute(
        "SELECT trigger_name, table_name FROM duckdb_triggers() "
        "WHERE trigger_name LIKE '%\\_no\\_update' ESCAPE '\\' "
        "OR trigger_name LIKE '%\\_no\\_delete' ESCAPE '\\'"
    ).fetchall():
        con.execute(f"DROP TRIGGER {name} ON {table}")
    con.execute("COMMIT")


def tamper_db(
    data_dir: Path, sql: str | Sequence[str], params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Edit ``data_dir``'s database directly: drop the guard triggers, run ``sql``
    (one statement or several, each committed on its own); returns the last result."""
    statements = [sql] if isinstance(sql, str) else list(sql)
    con = duckdb.connect(str(data_dir / "hmi.duckdb"))
    try:
        drop_guards(con)
        result: list[tuple[Any, ...]] = []
        for statement in statements:
            cur = con.execute(statement, params)
            try:
                result = cur.fetchall()
            except duckdb.InvalidInputException:
                result = []
        return result
    finally:
        con.close()


@pytest.fixture
def tamper() -> Callable[..., list[tuple[Any, ...]]]:
    """``tamper(data_dir, sql, params=None)``: see ``tamper_db``."""
    return tamper_db


def read_db(data_dir: Path, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Read the database of a closed data directory (read-only)."""
    con = duckdb.connect(str(data_dir / "hmi.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.fixture
def read() -> Callable[..., list[tuple[Any, ...]]]:
    """``read(data_dir, sql, params=None)``: a read-only query on a closed data directory."""
    return read_db
