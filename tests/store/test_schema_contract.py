"""The schema the migrations create matches the specs the writer and verifier hash by,
and the QA-facing views exist without exposing password hashes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import pytest

from hmi.core.audit import Kind
from hmi.core.clock import FakeClock
from hmi.store.db import Store
from hmi.store.tables import CHAINED_TABLES

QA_VIEWS = {"audit_trail", "esignatures", "security_events", "users", "qa_queries"}
SQL_TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.INT: "BIGINT",
    Kind.BOOL: "BOOLEAN",
    Kind.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    Kind.BLOB: "BLOB",
}
HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("schema") / "data"
    Store.create(root, clock=FakeClock()).close()
    c = duckdb.connect(str(root / "hmi.duckdb"))
    yield c
    c.close()


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()


@pytest.mark.parametrize("table", list(CHAINED_TABLES))
def test_chained_table_columns_are_the_spec_plus_digest(
    con: duckdb.DuckDBPyConnection, table: str
) -> None:
    spec = CHAINED_TABLES[table]
    expected = [(name, SQL_TYPES[kind]) for name, kind in spec.columns] + [("digest", "BLOB")]

    assert columns(con, table) == expected


@pytest.mark.parametrize("table", list(CHAINED_TABLES))
def test_chained_table_seq_is_the_primary_key(con: duckdb.DuckDBPyConnection, table: str) -> None:
    keys = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchall()
    assert keys == [(["seq"],)]


def test_qa_views_exist(con: duckdb.DuckDBPyConnection) -> None:
    views = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
        ).fetchall()
    }
    assert views >= QA_VIEWS
    assert {spec.view for spec in CHAINED_TABLES.values()} <= views
    for view in QA_VIEWS:
        con.execute(f"SELECT * FROM {view} LIMIT 0")


def test_users_view_exposes_no_password_hash(con: duckdb.DuckDBPyConnection) -> None:
    names = [name for name, _ in columns(con, "users")]
    assert names, "users view has no columns"
    assert [n for n in names if "hash" in n.lower()] == []
    # account metadata about passwords is fine; the hash itself is not
    assert {n for n in names if "password" in n.lower()} <= {
        "password_changed_at",
        "must_change_password",
    }

    now = datetime(2026, 1, 5, 8, tzinfo=UTC)
    con.execute(
        "INSERT INTO user_accounts (user_id, full_name, roles, created_at, created_by, "
        "password_changed_at) VALUES ('op1', 'Olga Operator', 'operator', ?, 'admin1', ?)",
        [now, now],
    )
    con.execute("INSERT INTO password_hashes VALUES ('op1', 1, ?, ?, true)", [HASH, now])
    rows = con.execute("SELECT * FROM users").fetchall()
    assert len(rows) == 1
    assert not any("argon2" in str(value) for value in rows[0])
