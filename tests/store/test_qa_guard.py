"""The QA query guard against a real DuckDB file with a key file beside it.

The working directory is the data directory, so every relative-path attack in
these tests would read ``keys/hmac.key`` if the guard let it through
(``test_the_attacks_are_real`` shows that they do on a bare connection).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from hmi.core.errors import QueryRefused
from hmi.store.qa_guard import ALLOWED_FUNCTIONS, cancel_query, check_query, run_query

VIEWS = ("audit_trail", "users", "alarm_journal", "tag_history")
KEY = "0123456789abcdef-secret-hmac-key"

SCHEMA = """
CREATE TABLE users_raw (user_id INTEGER, name VARCHAR, password_hash VARCHAR);
CREATE TABLE audit_raw (seq INTEGER, ts TIMESTAMPTZ, actor_id INTEGER, event VARCHAR,
                        terminal_id VARCHAR, detail JSON);
CREATE TABLE alarm_raw (seq INTEGER, ts TIMESTAMPTZ, tag VARCHAR, state VARCHAR, value DOUBLE);
CREATE TABLE history_raw (ts TIMESTAMPTZ, tag VARCHAR, value DOUBLE);
INSERT INTO users_raw VALUES (1, 'Ada Operator', '$argon2id$x'), (2, 'Bo QA', '$argon2id$y'),
                             (3, 'Cy Engineer', '$argon2id$z');
INSERT INTO audit_raw
  SELECT i, TIMESTAMPTZ '2025-01-01 00:00:00+00' + i * INTERVAL 7 MINUTE, 1 + i % 3,
         CASE WHEN i % 2 = 0 THEN 'login' ELSE 'write' END, 'T' || (i % 2),
         json_object('tag', 'TT-' || (i % 4), 'new', i * 1.5)
  FROM range(1, 41) r(i);
INSERT INTO alarm_raw
  SELECT i, TIMESTAMPTZ '2025-01-01 00:00:00+00' + i * INTERVAL 1 HOUR, 'TT-' || (i % 3),
         CASE WHEN i % 2 = 0 THEN 'ACTIVE' ELSE 'CLEARED' END, i * 2.5
  FROM range(1, 21) r(i);
INSERT INTO history_raw
  SELECT TIMESTAMPTZ '2025-01-01 00:00:00+00' + i * INTERVAL 1 SECOND, 'TT-' || (i % 4), i % 97
  FROM range(0, 1000) r(i);
CREATE VIEW users AS SELECT user_id, name FROM users_raw;
CREATE VIEW audit_trail AS
  SELECT a.seq, a.ts, a.actor_id, u.name AS actor_name, a.event, a.terminal_id, a.detail
  FROM audit_raw a JOIN users_raw u ON u.user_id = a.actor_id;
CREATE VIEW alarm_journal AS SELECT * FROM alarm_raw;
CREATE VIEW tag_history AS SELECT * FROM history_raw;
CREATE MACRO leak(p) AS (SELECT content FROM read_text(p));
CREATE MACRO leak_table() AS TABLE SELECT content FROM read_text('keys/hmac.key');
"""


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """One database per module: no test here writes to it, and building it costs ~0.1 s."""
    data_dir = tmp_path_factory.mktemp("data")
    (data_dir / "keys").mkdir()
    (data_dir / "keys" / "hmac.key").write_text(KEY + "\n")
    (data_dir / "data.csv").write_text(f"secret\n{KEY}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(data_dir)
        connection = duckdb.connect(str(data_dir / "custos.duckdb"))
        connection.execute(SCHEMA)
        yield connection
        connection.close()


@pytest.fixture
def con(database: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = database.cursor()
    yield connection
    connection.close()


@pytest.fixture
def cursor(database: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = database.cursor()
    yield connection
    connection.close()


def refusal(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    with pytest.raises(QueryRefused) as caught:
        check_query(con, sql, VIEWS)
    return caught.value.message


def test_the_attacks_are_real(con: duckdb.DuckDBPyConnection) -> None:
    leaked = con.execute("SELECT content FROM read_text('keys/hmac.key')").fetchone()
    assert leaked is not None and KEY in leaked[0]
    assert con.execute("SELECT * FROM 'data.csv'").fetchall() == [(KEY,)]
    assert con.execute("SELECT * FROM data.csv").fetchall() == [(KEY,)]
    assert con.execute("SELECT leak('keys/hmac.key')").fetchone() == (KEY + "\n",)


GOOD_QUERIES = {
    "plain": ("SELECT seq, actor_name, event FROM audit_trail ORDER BY seq LIMIT 5", 5),
    "from_first": ("FROM audit_trail SELECT seq WHERE event = 'login'", 20),
    "main_schema": ("SELECT count(*) FROM main.audit_trail", 1),
    "upper_case_name": ('SELECT count(*) FROM "AUDIT_TRAIL"', 1),
    "join_group_order": (
        "SELECT u.name, count(*) AS n, min(a.ts), max(a.ts) FROM audit_trail a "
        "JOIN users u ON u.user_id = a.actor_id WHERE a.terminal_id IN ('T0', 'T1') "
        "GROUP BY u.name HAVING count(*) > 1 ORDER BY n DESC, u.name",
        3,
    ),
    "cte_and_window": (
        "WITH daily AS (SELECT date_trunc('hour', ts) AS h, count(*) AS n FROM audit_trail "
        "GROUP BY ALL), ranked AS (SELECT h, n, row_number() OVER (ORDER BY n DESC, h) AS r, "
        "sum(n) OVER (ORDER BY h ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS rolling "
        "FROM daily) SELECT * FROM ranked WHERE r <= 3 ORDER BY r",
        3,
    ),
    "recursive_cte": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4) "
        "SELECT i, (SELECT count(*) FROM users) FROM n",
        4,
    ),
    "nested_cte_in_subquery": (
        "SELECT * FROM (WITH x AS (SELECT * FROM users) SELECT name FROM x) s ORDER BY 1",
        3,
    ),
    "expressions": (
        "SELECT seq + 1, seq * 2 % 5, seq // 3, -seq, CAST(seq AS DECIMAL(10, 2)), "
        "seq::VARCHAR || '!', CASE WHEN seq BETWEEN 1 AND 3 THEN 'low' ELSE 'high' END, "
        "coalesce(terminal_id, '?'), nullif(event, 'x'), event LIKE 'lo%', "
        "event ILIKE 'W%', event NOT LIKE 'z%', event SIMILAR TO 'l.*', "
        "actor_name IS NOT NULL, seq IS DISTINCT FROM 3, "
        "strftime(ts, '%Y-%m-%d %H:%M'), epoch(ts), extract(year FROM ts), "
        "ts AT TIME ZONE 'UTC', ts - INTERVAL 1 DAY, date_diff('minute', ts, now()), "
        "json_extract_string(detail, '$.tag'), detail->>'tag', upper(actor_name), "
        "[1, 2, seq][3], {'k': seq}.k, list_transform([seq], lambda x: x + 1), "
        "regexp_replace(event, 'o', '0'), greatest(seq, 10), round(seq / 7, 2) "
        "FROM audit_trail WHERE seq IN (SELECT seq FROM audit_trail WHERE seq < 5) "
        "AND EXISTS (SELECT 1 FROM users) ORDER BY seq",
        4,
    ),
    "aggregates": (
        "SELECT event, count(DISTINCT actor_id), sum(seq), avg(seq), median(seq), "
        "string_agg(actor_name, ', ' ORDER BY seq), count(*) FILTER (WHERE seq > 10), "
        "arg_max(actor_name, ts), quantile_cont(seq, 0.9), stddev(seq), list(seq)[1], "
        "bool_or(seq = 1) FROM audit_trail GROUP BY ROLLUP (event) ORDER BY event",
        3,
    ),
    "window_functions": (
        "SELECT tag, value, lag(value) OVER w, lead(value, 2) OVER w, rank() OVER w, "
        "first_value(value) OVER w, ntile(4) OVER w FROM alarm_journal "
        "WINDOW w AS (PARTITION BY tag ORDER BY ts) QUALIFY row_number() OVER w <= 2",
        6,
    ),
    "set_operations": (
        "SELECT name FROM users UNION SELECT actor_name FROM audit_trail "
        "EXCEPT SELECT 'nobody' INTERSECT SELECT name FROM users",
        3,
    ),
    "values_and_lateral": (
        "SELECT v.k, l.n FROM (VALUES ('login'), ('write')) v(k), "
        "LATERAL (SELECT count(*) AS n FROM audit_trail a WHERE a.event = v.k) l",
        2,
    ),
    "sample_is_harmless": ("SELECT count(*) FROM tag_history USING SAMPLE 10%", 1),
    "star_forms": (
        "SELECT * EXCLUDE (detail), COLUMNS('actor_.*') FROM audit_trail LIMIT 2 OFFSET 1",
        2,
    ),
    "distinct_on": ("SELECT DISTINCT ON (tag) tag, ts FROM tag_history ORDER BY tag, ts", 4),
    "time_bucket": (
        "SELECT time_bucket(INTERVAL 5 MINUTE, ts) AS b, avg(value) FROM tag_history "
        "GROUP BY b ORDER BY b",
        4,
    ),
    "array_and_regex": ("SELECT ARRAY[1, 2], name ~ 'B.*', name !~ 'x' FROM users", 3),
    "trailing_semicolon_and_comment": ("SELECT count(*) FROM users; -- done", 1),
    "cte_named_like_a_hidden_table": (
        "WITH users_raw AS (SELECT * FROM users) SELECT name FROM users_raw",
        3,
    ),
}


@pytest.mark.parametrize("sql, expected_rows", GOOD_QUERIES.values(), ids=GOOD_QUERIES.keys())
def test_plain_selects_on_the_views_run(
    cursor: duckdb.DuckDBPyConnection, sql: str, expected_rows: int
) -> None:
    result = run_query(cursor, sql, VIEWS, max_rows=1000)
    assert result.row_count == expected_rows == len(result.rows)
    assert not result.truncated
    assert result.columns
    for row in result.rows:
        assert KEY not in repr(row)


def test_check_query_returns_the_single_stripped_statement(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert check_query(con, "  \n SELECT 1 AS one ;  ", VIEWS) == "SELECT 1 AS one ;"


# (sql, words the message must contain)
ATTACKS: dict[str, tuple[str, tuple[str, ...]]] = {
    # statement types
    "empty": ("", ("no SQL statement",)),
    "only_comment": ("-- nothing", ("no SQL statement",)),
    "two_statements": ("SELECT 1; SELECT 2", ("one statement", "2 statements")),
    "select_then_copy": (
        "SELECT 1; COPY users_raw TO 'out.csv'",
        ("one statement",),
    ),
    "copy": ("COPY (SELECT * FROM users_raw) TO 'stolen.csv'", ("COPY statement",)),
    "copy_from": ("COPY users_raw FROM 'data.csv'", ("COPY statement",)),
    "attach": ("ATTACH 'other.duckdb' AS o", ("ATTACH",)),
    "detach": ("DETACH custos", ("DETACH",)),
    "pragma": ("PRAGMA show_tables", ("PRAGMA",)),
    "set": ("SET enable_external_access = true", ("SET",)),
    "reset": ("RESET threads", ("RESET",)),
    "use": ("USE memory", ("USE",)),
    "set_variable": ("SET VARIABLE p = 'keys/hmac.key'", ("SET",)),
    "install": ("INSTALL httpfs", ("INSTALL",)),
    "load": ("LOAD json", ("LOAD",)),
    "call": ("CALL pragma_version()", ("CALL",)),
    "checkpoint": ("CHECKPOINT", ("CHECKPOINT",)),
    "export": ("EXPORT DATABASE 'dump'", ("EXPORT",)),
    "import": ("IMPORT DATABASE 'dump'", ("IMPORT DATABASE",)),
    "create": ("CREATE TABLE x AS SELECT * FROM users_raw", ("CREATE",)),
    "create_macro": ("CREATE MACRO m() AS 1", ("CREATE",)),
    "insert": ("INSERT INTO users_raw VALUES (9, 'x', 'y')", ("INSERT",)),
    "insert_with_cte": (
        "WITH x AS (SELECT 1) INSERT INTO users_raw SELECT 9, 'x', 'y'",
        ("INSERT",),
    ),
    "update": ("UPDATE users_raw SET name = 'x'", ("UPDATE",)),
    "delete": ("DELETE FROM audit_raw", ("DELETE",)),
    "drop": ("DROP VIEW audit_trail", ("DROP",)),
    "alter": ("ALTER TABLE users_raw ADD COLUMN x INT", ("ALTER",)),
    "explain": ("EXPLAIN SELECT * FROM users", ("EXPLAIN",)),
    "explain_analyze": ("EXPLAIN ANALYZE SELECT * FROM users", ("EXPLAIN",)),
    "begin": ("BEGIN TRANSACTION", ("BEGIN",)),
    "vacuum": ("VACUUM", ("VACUUM",)),
    "prepare": ("PREPARE p AS SELECT 1", ("PREPARE",)),
    "execute": ("EXECUTE p", ("EXECUTE",)),
    "merge": (
        "MERGE INTO users_raw USING users_raw s ON true WHEN MATCHED THEN DELETE",
        ("MERGE",),
    ),
    "pivot_statement": ("PIVOT alarm_journal ON tag USING count(*)", ("PIVOT",)),
    "update_extensions": ("UPDATE EXTENSIONS", ("SELECT statements",)),
    "syntax_error": ("SELEC * FROM users", ("could not be read", "syntax error")),
    # file readers as table functions, anywhere in the tree
    "read_text": ("SELECT * FROM read_text('keys/hmac.key')", ("read_text is not allowed",)),
    "read_blob": ("SELECT * FROM read_blob('keys/hmac.key')", ("read_blob",)),
    "read_csv": ("SELECT * FROM read_csv('data.csv')", ("read_csv",)),
    "read_csv_auto": ("SELECT * FROM read_csv_auto('data.csv')", ("read_csv_auto",)),
    "read_json": ("SELECT * FROM read_json('keys/hmac.key')", ("read_json",)),
    "read_parquet": ("SELECT * FROM read_parquet('x.parquet')", ("read_parquet",)),
    "parquet_scan": ("SELECT * FROM parquet_scan('x.parquet')", ("parquet_scan",)),
    "sniff_csv": ("SELECT * FROM sniff_csv('data.csv')", ("sniff_csv",)),
    "glob": ("SELECT * FROM glob('keys/*')", ("glob",)),
    "read_text_in_cte": (
        "WITH k AS (SELECT content FROM read_text('keys/hmac.key')) SELECT * FROM k",
        ("read_text",),
    ),
    "read_text_in_scalar_subquery": (
        "SELECT seq, (SELECT content FROM read_text('keys/hmac.key')) FROM audit_trail",
        ("read_text",),
    ),
    "read_text_in_where": (
        "SELECT * FROM users WHERE name IN (SELECT content FROM read_text('keys/hmac.key'))",
        ("read_text",),
    ),
    "read_text_lateral": (
        "SELECT * FROM users u, LATERAL read_text('keys/' || u.name) t",
        ("read_text",),
    ),
    "read_text_lateral_subquery": (
        "SELECT * FROM users u, LATERAL (SELECT * FROM read_text('keys/hmac.key')) t",
        ("read_text",),
    ),
    "read_text_in_join": (
        "SELECT * FROM users u JOIN read_text('keys/hmac.key') t ON true",
        ("read_text",),
    ),
    "read_text_via_union": (
        "SELECT name FROM users UNION ALL SELECT content FROM read_text('keys/hmac.key')",
        ("read_text",),
    ),
    "read_text_in_recursive_cte": (
        "WITH RECURSIVE r(c) AS (SELECT 'a' UNION SELECT content FROM read_text('keys/hmac.key')) "
        "SELECT * FROM r",
        ("read_text",),
    ),
    "read_text_in_lambda": (
        "SELECT list_transform(['keys/hmac.key'], lambda p: read_text(p)) FROM users",
        ("read_text",),
    ),
    "read_text_as_scalar": ("SELECT read_text('keys/hmac.key')", ("read_text",)),
    "qualified_read_text": (
        "SELECT * FROM system.main.read_text('keys/hmac.key')",
        ("read_text",),
    ),
    # replacement scans of files
    "from_string_path": ("SELECT * FROM 'keys/hmac.key'", ("keys/hmac.key", "file")),
    "from_quoted_path": ('SELECT * FROM "keys/hmac.key"', ("keys/hmac.key", "file")),
    "from_absolute_path": ("SELECT * FROM '/etc/passwd'", ("/etc/passwd", "file")),
    "from_home_path": ("FROM '~/.duckdbrc'", ("~/.duckdbrc", "file")),
    "from_glob": ("SELECT * FROM 'keys/*'", ("keys/*", "file")),
    "from_dotted_csv": ("SELECT * FROM data.csv", ("data.csv",)),
    "bare_from_file": ("FROM 'data.csv'", ("data.csv", "file")),
    "file_in_join": (
        "SELECT * FROM users JOIN 'data.csv' d ON true",
        ("data.csv", "file"),
    ),
    "file_in_subquery": (
        "SELECT (SELECT max(secret) FROM 'data.csv') FROM users",
        ("data.csv", "file"),
    ),
    "file_via_cte_self_reference": (
        'WITH "data.csv" AS (SELECT * FROM "data.csv") SELECT * FROM "data.csv"',
        ("data.csv",),
    ),
    "cte_out_of_scope": (
        "SELECT * FROM (WITH leakme AS (SELECT 1) SELECT * FROM leakme) s, leakme",
        ("leakme", "not one of the documented views"),
    ),
    "cte_forward_reference": (
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
        ("Table 'b'",),
    ),
    "recursive_anchor_self_reference": (
        "WITH RECURSIVE r AS (SELECT * FROM r UNION ALL SELECT * FROM r) SELECT * FROM r",
        ("Table 'r'",),
    ),
    # tables and catalogue
    "underlying_table": ("SELECT * FROM users_raw", ("Table 'users_raw'",)),
    "underlying_table_in_join": (
        "SELECT a.seq, u.password_hash FROM audit_trail a JOIN users_raw u USING (seq)",
        ("users_raw",),
    ),
    "underlying_table_in_subquery": (
        "SELECT (SELECT max(password_hash) FROM users_raw) FROM users",
        ("users_raw",),
    ),
    "other_catalog": ("SELECT * FROM system.main.audit_trail", ("system.main.audit_trail",)),
    "temp_schema": ("SELECT * FROM temp.main.audit_trail", ("Table 'temp.main.audit_trail'",)),
    "info_schema": ("SELECT * FROM information_schema.tables", ("information_schema.tables",)),
    "duckdb_tables_view": ("SELECT * FROM duckdb_tables", ("duckdb_tables",)),
    "sqlite_master": ("SELECT * FROM sqlite_master", ("sqlite_master",)),
    "duckdb_settings": ("SELECT * FROM duckdb_settings()", ("duckdb_settings",)),
    "duckdb_databases": ("SELECT * FROM duckdb_databases()", ("duckdb_databases",)),
    "duckdb_tables": ("SELECT * FROM duckdb_tables()", ("duckdb_tables",)),
    "duckdb_functions": ("FROM duckdb_functions()", ("duckdb_functions",)),
    "duckdb_secrets": ("FROM duckdb_secrets()", ("duckdb_secrets",)),
    "pragma_function": ("SELECT * FROM pragma_table_info('users_raw')", ("pragma_table_info",)),
    "pragma_version": ("SELECT * FROM pragma_version()", ("pragma_version",)),
    "query": ("SELECT * FROM query('SELECT * FROM users_raw')", ("query is not allowed",)),
    "query_table": ("SELECT * FROM query_table('users_raw')", ("query_table",)),
    "query_table_from_string_cast": (
        "SELECT * FROM query_table('users' || '_raw'::VARCHAR)",
        ("query_table",),
    ),
    "serialized_sql": (
        "SELECT * FROM json_execute_serialized_sql('{}')",
        ("json_execute_serialized_sql",),
    ),
    "summarize": ("SUMMARIZE users_raw", ("SUMMARIZE",)),
    "summarize_view": ("SUMMARIZE audit_trail", ("SUMMARIZE",)),
    "describe": ("DESCRIBE users_raw", ("DESCRIBE",)),
    "show_tables": ("SHOW TABLES", ("SHOW",)),
    "show_all_tables": ("SHOW ALL TABLES", ("SHOW",)),
    "unpivot": ("UNPIVOT alarm_journal ON value INTO NAME k VALUE v", ("PIVOT",)),
    "pivot_in_subquery": (
        "SELECT * FROM (PIVOT alarm_journal ON tag IN ('TT-0') USING count(*))",
        ("PIVOT",),
    ),
    "time_travel": ("SELECT * FROM audit_trail AT (VERSION => 1)", ("AT",)),
    # macros
    "table_macro": ("SELECT * FROM leak_table()", ("leak_table",)),
    "scalar_macro": ("SELECT leak('keys/hmac.key')", ("leak is not allowed",)),
    "qualified_macro": ("SELECT main.leak('keys/hmac.key')", ("main.leak",)),
    # scalar functions outside the allow-list
    "getenv": ("SELECT getenv('HOME')", ("getenv",)),
    "current_setting": ("SELECT current_setting('temp_directory')", ("current_setting",)),
    "getvariable": ("SELECT getvariable('p')", ("getvariable",)),
    "nextval": ("SELECT nextval('seq')", ("nextval",)),
    "setseed": ("SELECT setseed(0.5)", ("setseed",)),
    "list_aggregate_by_name": (
        "SELECT list_aggregate([1], 'read_text')",
        ("list_aggregate",),
    ),
    "json_serialize_plan": (
        "SELECT json_serialize_plan('SELECT * FROM read_text(''keys/hmac.key'')')",
        ("json_serialize_plan",),
    ),
    "sleep": ("SELECT sleep_ms(100000)", ("sleep_ms",)),
    "version": ("SELECT version()", ("version",)),
    "unknown_in_window": ("SELECT fill(seq) OVER () FROM audit_trail", ("fill",)),
    "scalar_in_window": ("SELECT upper(event) OVER () FROM audit_trail", ("upper",)),
    "function_in_order_by": (
        "SELECT name FROM users ORDER BY getenv(name)",
        ("getenv",),
    ),
    "function_in_filter": (
        "SELECT count(*) FILTER (WHERE getenv('X') IS NULL) FROM users",
        ("getenv",),
    ),
    "function_in_cast": ("SELECT CAST(getenv('HOME') AS VARCHAR)", ("getenv",)),
    "parameter": ("SELECT * FROM users WHERE user_id = ?", ("parameters",)),
}


@pytest.mark.parametrize("sql, words", ATTACKS.values(), ids=ATTACKS.keys())
def test_attacks_are_refused_with_a_message_naming_the_cause(
    con: duckdb.DuckDBPyConnection, sql: str, words: tuple[str, ...]
) -> None:
    message = refusal(con, sql)
    for word in words:
        assert word in message


def test_function_refusal_lists_the_documented_views(con: duckdb.DuckDBPyConnection) -> None:
    message = refusal(con, "SELECT * FROM read_text('keys/hmac.key')")
    assert message == (
        "read_text is not allowed: queries may use only the documented views "
        "(alarm_journal, audit_trail, tag_history, users) and plain scalar and "
        "aggregate functions."
    )


def test_statement_type_refusal_is_plain(con: duckdb.DuckDBPyConnection) -> None:
    assert refusal(con, "COPY users_raw TO 'x.csv'") == (
        "Only SELECT statements may run here; this is a COPY statement."
    )


def test_table_refusal_names_the_table(con: duckdb.DuckDBPyConnection) -> None:
    assert refusal(con, "SELECT * FROM users_raw") == (
        "Table 'users_raw' is not one of the documented views: "
        "alarm_journal, audit_trail, tag_history, users."
    )


def test_a_listed_view_missing_from_the_database_is_refused(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(QueryRefused, match="no such view"):
        check_query(con, "SELECT * FROM captures", [*VIEWS, "captures"])


def test_a_listed_name_that_is_a_table_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryRefused, match="users_raw"):
        check_query(con, "SELECT * FROM users_raw", [*VIEWS, "users_raw"])


def test_refused_queries_do_not_run(cursor: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryRefused):
        run_query(cursor, "COPY (SELECT * FROM users_raw) TO 'stolen.csv'", VIEWS, 10)
    assert not Path("stolen.csv").exists()


def test_row_cap_truncates(cursor: duckdb.DuckDBPyConnection) -> None:
    result = run_query(cursor, "SELECT seq FROM audit_trail ORDER BY seq", VIEWS, max_rows=5)
    assert result.rows == [(1,), (2,), (3,), (4,), (5,)]
    assert result.truncated
    assert result.row_count == 5
    assert result.columns == ["seq"]
    assert result.elapsed_s >= 0


def test_exactly_the_cap_is_not_truncated(cursor: duckdb.DuckDBPyConnection) -> None:
    result = run_query(cursor, "SELECT * FROM users", VIEWS, max_rows=3)
    assert (result.row_count, result.truncated) == (3, False)


def test_zero_rows_asked_still_says_whether_there_were_any(
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    assert run_query(cursor, "SELECT * FROM users", VIEWS, max_rows=0).truncated
    empty = run_query(cursor, "SELECT * FROM users WHERE false", VIEWS, max_rows=0)
    assert not empty.truncated


def test_a_huge_result_is_not_computed_to_the_end(cursor: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT a.ts, b.ts, c.value FROM tag_history a, tag_history b, tag_history c"
    started = time.perf_counter()
    result = run_query(cursor, sql, VIEWS, max_rows=100)
    assert time.perf_counter() - started < 5
    assert (result.row_count, result.truncated) == (100, True)


def test_runtime_errors_are_refusals_with_duckdbs_reason(
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(QueryRefused, match="no_such_column") as caught:
        run_query(cursor, "SELECT no_such_column FROM users", VIEWS, 10)
    assert caught.value.title == "Query failed"


SLOW = "SELECT count(*) FROM tag_history a, tag_history b, tag_history c, tag_history d"


def test_a_running_query_can_be_cancelled_from_another_thread(
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    timer = threading.Timer(0.3, cancel_query, args=(cursor,))
    timer.start()
    started = time.perf_counter()
    with pytest.raises(QueryRefused, match="cancelled") as caught:
        run_query(cursor, SLOW, VIEWS, 10)
    timer.join()
    assert caught.value.title == "Query cancelled"
    assert time.perf_counter() - started < 10
    assert run_query(cursor, "SELECT count(*) FROM users", VIEWS, 10).rows == [(3,)]


def test_a_timeout_stops_the_query(cursor: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryRefused, match=r"longer than 0\.3 s") as caught:
        run_query(cursor, SLOW, VIEWS, 10, timeout_s=0.3)
    assert caught.value.title == "Query cancelled"
    assert run_query(cursor, "SELECT 1", VIEWS, 10, timeout_s=5).rows == [(1,)]


def test_cancelling_an_idle_cursor_does_not_spoil_its_next_query(
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    cancel_query(cursor)
    assert run_query(cursor, "SELECT count(*) FROM users", VIEWS, 10).rows == [(3,)]


def test_negative_row_cap_is_a_programming_error(cursor: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        run_query(cursor, "SELECT 1", VIEWS, -1)


PARSER_NAMES = {"unnest"}
NEVER_ALLOWED = {
    "read_text", "read_blob", "read_csv", "read_csv_auto", "read_json", "read_parquet",
    "parquet_scan", "glob", "getenv", "current_setting", "duckdb_settings",
    "duckdb_databases", "duckdb_tables", "duckdb_functions", "query", "query_table",
    "sniff_csv", "getvariable", "nextval", "currval", "setval", "setseed", "list_aggregate",
    "json_execute_serialized_sql", "json_serialize_plan", "sleep_ms", "pg_sleep",
    "current_query", "write_log", "invoke", "error", "stats", "make_type",
}  # fmt: skip


def test_allow_list_holds_only_existing_scalar_aggregate_and_window_functions(
    con: duckdb.DuckDBPyConnection,
) -> None:
    kinds: dict[str, set[str]] = {}
    for name, kind in con.execute(
        "SELECT function_name, function_type FROM duckdb_functions()"
    ).fetchall():
        kinds.setdefault(name, set()).add(kind)
    callable_kinds = {"scalar", "aggregate", "window", "macro"}
    for name in ALLOWED_FUNCTIONS - PARSER_NAMES:
        assert kinds.get(name, set()) & callable_kinds, name
    assert not ALLOWED_FUNCTIONS & NEVER_ALLOWED
