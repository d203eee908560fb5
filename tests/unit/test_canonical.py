"""The property the verifier rests on: the canonical form the writer hashes in Python
(``hmi.core.audit.canonical_row``) is exactly the text DuckDB builds for the stored row
(``hmi.store.verify.canonical_sql``), for every kind of column and value.

A scratch chained-table spec with one column of each kind is created in an in-memory
DuckDB; rows go in the two ways the writer inserts them (parameterised INSERT, Arrow
batch) and the SQL text read back must equal the Python bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hmi.core.audit import Kind, canonical_row
from hmi.store.tables import ChainedTable
from hmi.store.verify import canonical_sql
from hmi.store.writetx import _ARROW_TYPES

SQL_TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.INT: "BIGINT",
    Kind.BOOL: "BOOLEAN",
    Kind.TIMESTAMP: "TIMESTAMPTZ",
    Kind.BLOB: "BLOB",
}

SCRATCH = ChainedTable(
    "scratch_records",
    "scratch",
    (
        ("seq", Kind.INT),
        ("ts", Kind.TIMESTAMP),
        ("note", Kind.TEXT),
        ("count", Kind.INT),
        ("flag", Kind.BOOL),
        ("payload", Kind.BLOB),
        ("detail", Kind.TEXT),  # two text columns side by side: separators must not blur
    ),
)
assert {kind for _, kind in SCRATCH.columns} == set(Kind), "one column of each kind"

COLUMNS = SCRATCH.column_names
COLUMN_LIST = ", ".join(f'"{c}"' for c in COLUMNS)

TIMEZONES = [
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(-timedelta(hours=8)),
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
]

TRICKY = ["", "|", "~", ":", "s3:abc", "a|i1|~", "line\nbreak\r\n", "\x00", "µ°✓温度", "🧪"]

texts = st.one_of(
    st.sampled_from(TRICKY),
    st.text(),
    st.lists(st.sampled_from(TRICKY), max_size=6).map("".join),
)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
timestamps = st.datetimes(
    min_value=datetime(1, 1, 3),
    max_value=datetime(9999, 12, 29),
    timezones=st.sampled_from(TIMEZONES),
)


def rows() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {
            "seq": ints | st.none(),
            "ts": timestamps | st.none(),
            "note": texts | st.none(),
            "count": ints | st.none(),
            "flag": st.booleans() | st.none(),
            "payload": st.binary(max_size=40) | st.none(),
            "detail": texts | st.none(),
        }
    )


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect(":memory:")
    columns = ", ".join(f'"{name}" {SQL_TYPES[kind]}' for name, kind in SCRATCH.columns)
    c.execute(f"CREATE TABLE {SCRATCH.name} ({columns}, digest BLOB)")
    yield c
    c.close()


def sql_forms(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        text
        for (text,) in con.execute(
            f"SELECT {canonical_sql(SCRATCH)} FROM {SCRATCH.name} ORDER BY rowid"
        ).fetchall()
    ]


def insert_params(con: duckdb.DuckDBPyConnection, batch: list[dict[str, object]]) -> None:
    placeholders = ", ".join("?" for _ in COLUMNS)
    for row in batch:
        con.execute(
            f"INSERT INTO {SCRATCH.name} ({COLUMN_LIST}) VALUES ({placeholders})",
            [row[c] for c in COLUMNS],
        )


def insert_arrow(con: duckdb.DuckDBPyConnection, batch: list[dict[str, object]]) -> None:
    """As the writer inserts a batch of four or more rows (hmi.store.db.WriteTx.flush)."""
    table = pa.table(
        {c: pa.array([r[c] for r in batch], type=_ARROW_TYPES[k]) for c, k in SCRATCH.columns}
    )
    con.register("_scratch_batch", table)
    try:
        con.execute(
            f"INSERT INTO {SCRATCH.name} ({COLUMN_LIST}) SELECT {COLUMN_LIST} FROM _scratch_batch"
        )
    finally:
        con.unregister("_scratch_batch")


def check(con: duckdb.DuckDBPyConnection, batch: list[dict[str, object]], *, arrow: bool) -> None:
    con.execute(f"DELETE FROM {SCRATCH.name}")
    (insert_arrow if arrow else insert_params)(con, batch)
    expected = [canonical_row(SCRATCH.columns, row).decode("utf-8") for row in batch]
    assert sql_forms(con) == expected


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(row=rows())
def test_python_and_sql_canonical_forms_agree(
    con: duckdb.DuckDBPyConnection, row: dict[str, object]
) -> None:
    check(con, [row], arrow=False)


@settings(SETTINGS, max_examples=50)
@given(batch=st.lists(rows(), min_size=4, max_size=6))
def test_python_and_sql_canonical_forms_agree_for_arrow_batches(
    con: duckdb.DuckDBPyConnection, batch: list[dict[str, object]]
) -> None:
    check(con, batch, arrow=True)


def test_all_null_row_agrees(con: duckdb.DuckDBPyConnection) -> None:
    """NULL is ``~`` for every kind (a NULL BOOL once came out of SQL as ``b0``)."""
    row: dict[str, object] = {**dict.fromkeys(COLUMNS), "seq": 1}
    assert canonical_row(SCRATCH.columns, row) == b"i1|~|~|~|~|~|~"
    check(con, [row], arrow=False)
    check(con, [row] * 4, arrow=True)


def test_examples_from_the_documented_encoding(con: duckdb.DuckDBPyConnection) -> None:
    ts = datetime(2026, 1, 5, 8, 0, 0, 1, tzinfo=UTC)
    row: dict[str, object] = {
        "seq": 42,
        "ts": ts,
        "note": "pH 7!",
        "count": -1,
        "flag": True,
        "payload": b"\x00\xff",
        "detail": "",
    }
    check(con, [row], arrow=False)
    assert canonical_row(SCRATCH.columns, row) == (
        b"i42|t1767600000000001|s5:pH 7!|i-1|b1|x00ff|s0:"
    )
