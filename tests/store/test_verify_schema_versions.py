"""verify on a database written at an earlier schema version, and on a dropped chained table."""

from __future__ import annotations

from pathlib import Path

import duckdb

from hmi.store.db import Store
from hmi.store.tables import AUDIT
from hmi.store.verify import verify_data_dir


def _make(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = Store.create(data)
    store.append(AUDIT, {"action": "a", "outcome": "done"})
    store.checkpoint_now()
    store.close()
    return data


def test_a_table_from_a_later_migration_is_a_note_on_an_older_database(tmp_path: Path):
    data = _make(tmp_path)
    con = duckdb.connect(str(data / "hmi.duckdb"))
    con.execute("DROP VIEW captures")
    con.execute("DROP TABLE capture_records")
    con.execute("DELETE FROM schema_migrations WHERE version = 3")
    con.execute("UPDATE schema_meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    report = verify_data_dir(data)
    assert report.ok, report.problems
    assert any("capture_records does not exist yet" in n for n in report.notes)
    Store.open(data).close()  # the runtime applies the missing migration
    report = verify_data_dir(data)
    assert report.ok and not any("does not exist" in n for n in report.notes)


def test_a_dropped_chained_table_is_a_problem(tmp_path: Path):
    data = _make(tmp_path)
    con = duckdb.connect(str(data / "hmi.duckdb"))
    con.execute("DROP VIEW qa_queries")
    con.execute("DROP TABLE qa_query_records")
    con.close()
    report = verify_data_dir(data)
    assert [(p.table, p.message) for p in report.problems] == [
        ("qa_query_records", "table is missing from the database (dropped?)")
    ]
