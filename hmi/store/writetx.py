"""The writer's transaction: what a write job may do, and how buffered rows are inserted.

A job appends chained rows (``append``: seq, ts and digest assigned here, in
the writer thread, so sequences stay gap-free) and may run other statements
(``execute``). Appends are buffered and inserted per table in one statement
when the batch ends, because each DuckDB statement costs about a millisecond
however small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from hmi.core.audit import Kind, canonical_row, chain_digest
from hmi.store.tables import CHAINED_TABLES, ESIGNATURES, ChainedTable

if TYPE_CHECKING:
    from hmi.store.db import Store

ARROW_THRESHOLD = 6
_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.TEXT: pa.string(),
    Kind.INT: pa.int64(),
    Kind.BOOL: pa.bool_(),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.BLOB: pa.binary(),
}


@dataclass(frozen=True)
class Head:
    seq: int
    digest: bytes


@dataclass(frozen=True)
class Appended:
    table: str
    seq: int
    ts: datetime
    digest: bytes


class WriteTx:
    """What a write job may do inside the writer's transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[str, list[dict[str, object]]] = {}
        self.checkpoint_requested = False
        self.begun = False

    def begin(self) -> None:
        """Open the batch's transaction, once, before the first statement that needs it.

        A batch that only appends to one table is flushed as a single autocommit
        INSERT instead: it is atomic and durable on its own, and skipping BEGIN
        and COMMIT saves two statements (each also a GIL hand-off) per commit.
        """
        if not self.begun:
            self._store.write_connection.execute("BEGIN TRANSACTION")
            self.begun = True

    @property
    def now(self) -> datetime:
        return self._store.clock.now()

    def append(self, table: ChainedTable | str, row: Mapping[str, object]) -> Appended:
        """Add ``row`` to the chained ``table``: assigns seq and ts, computes the digest."""
        spec = CHAINED_TABLES[table] if isinstance(table, str) else table
        unknown = set(row) - set(spec.column_names)
        if unknown:
            raise ValueError(f"{spec.name} has no column(s) {sorted(unknown)}")
        head = self._store.heads[spec.name]
        full = {
            # A str subclass (e.g. a str enum) is stored and hashed as its plain text.
            name: str.__str__(value) if isinstance(value, str) and type(value) is not str else value
            for name, value in row.items()
        }
        full["seq"] = head.seq + 1
        ts = full.get("ts") or self._store.clock.now()
        assert isinstance(ts, datetime)
        full["ts"] = ts
        digest = chain_digest(
            self._store.keys.hmac_key, head.digest, canonical_row(spec.columns, full)
        )
        full["digest"] = digest
        self._store.heads[spec.name] = Head(head.seq + 1, digest)
        self._pending.setdefault(spec.name, []).append(full)
        if spec is ESIGNATURES:
            self.checkpoint_requested = True
        return Appended(spec.name, head.seq + 1, ts, digest)

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run a statement on the writer's connection (after any buffered appends)."""
        self.begin()
        self.flush()
        cur = self._store.write_connection.execute(sql, params)
        try:
            return cur.fetchall()
        except duckdb.InvalidInputException:
            return []

    def flush(self) -> None:
        """Insert the buffered rows: one statement per table, whatever the count.

        Every INSERT costs about a millisecond in DuckDB however small, so a few
        rows go as one multi-row VALUES statement and more as one Arrow batch,
        inserted through the relation API (no register/unregister statements).
        """
        con = self._store.write_connection
        for name, rows in self._pending.items():
            spec = CHAINED_TABLES[name]
            if len(rows) < ARROW_THRESHOLD:
                cols = [*spec.column_names, "digest"]
                one = "(" + ", ".join("?" for _ in cols) + ")"
                con.execute(
                    f"INSERT INTO {name} ({', '.join(cols)}) VALUES {', '.join([one] * len(rows))}",
                    [row.get(c) for row in rows for c in cols],
                )
            else:
                kinds = self._store.physical_columns(spec)
                batch = pa.table(
                    {c: pa.array([r.get(c) for r in rows], type=_ARROW_TYPES[k]) for c, k in kinds}
                )
                con.from_arrow(batch).insert_into(name)
        self._pending.clear()
