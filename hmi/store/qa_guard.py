"""Whether a QA user's SQL may run, and the runner that enforces a row cap.

QA staff write SQL against the documented views (DESIGN.md, "QA-facing
database contract"). A plain DuckDB SELECT can read any file the process can
(``read_text('keys/hmac.key')``, ``FROM 'keys/*'``), list settings or call
catalogue functions, so "it is a SELECT" is not enough. The decision is made
from DuckDB's own parser, never from the text: ``extract_statements`` gives the
number and type of statements, ``json_serialize_sql`` gives the parse tree, and
every node of that tree must be something this module knows to be harmless.
Anything it does not recognise is refused (default deny), so a new DuckDB
feature is closed until someone decides to open it.

What is allowed:

* exactly one SELECT statement (including set operations and ``FROM``-first);
* table references that name a documented view (unqualified or ``main.``),
  a WITH name in scope at that point, a subquery, a join or a VALUES list;
* functions on the allow-list ``ALLOWED_FUNCTIONS``: operators and plain
  scalar, aggregate and window functions that compute on their arguments only.

Table functions, DESCRIBE/SHOW/SUMMARIZE, PIVOT, time travel, query
parameters and names that look like file paths are refused with a message a
QA person can act on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import duckdb

from hmi.core.errors import QueryRefused
from hmi.store.qa_functions import ALLOWED_FUNCTIONS, WINDOW_FUNCTIONS, words

__all__ = ["ALLOWED_FUNCTIONS", "QueryResult", "cancel_query", "check_query", "run_query"]


_EXPRESSION_CLASSES = words(
    "FUNCTION WINDOW COLUMN_REF CONSTANT COMPARISON CONJUNCTION OPERATOR CASE CAST "
    "BETWEEN COLLATE STAR SUBQUERY LAMBDA POSITIONAL_REFERENCE TYPE"
)
_OPERATOR_TYPES = words(
    "OPERATOR_NOT OPERATOR_IS_NULL OPERATOR_IS_NOT_NULL OPERATOR_COALESCE OPERATOR_NULLIF "
    "OPERATOR_TRY OPERATOR_UNPACK COMPARE_IN COMPARE_NOT_IN ARRAY_EXTRACT ARRAY_SLICE "
    "STRUCT_EXTRACT ARRAY_CONSTRUCTOR GROUPING_FUNCTION"
)
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE"})
_PLAIN_TABLE_REFS = frozenset({"JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY"})
_CLAUSE_TYPES = words(
    "ORDER_MODIFIER LIMIT_MODIFIER LIMIT_PERCENT_MODIFIER DISTINCT_MODIFIER "
    "ORDER_DEFAULT ASCENDING DESCENDING"
)
_SKIPPED_KEYS = frozenset({"sample", "expected_types"})
_PATH_CHARACTERS = frozenset("/\\.*?~:[]{}")

_STATEMENT_WORDS = {
    "ALTER": "an ALTER statement",
    "ANALYZE": "an ANALYZE statement",
    "ATTACH": "an ATTACH statement",
    "CALL": "a CALL (or CHECKPOINT) statement",
    "COPY": "a COPY statement",
    "COPY_DATABASE": "a COPY DATABASE statement",
    "CREATE": "a CREATE statement",
    "CREATE_FUNC": "a CREATE FUNCTION statement",
    "DELETE": "a DELETE statement",
    "DETACH": "a DETACH statement",
    "DROP": "a DROP (or DEALLOCATE) statement",
    "EXECUTE": "an EXECUTE statement",
    "EXPLAIN": "an EXPLAIN statement",
    "EXPORT": "an EXPORT statement",
    "EXTENSION": "an extension statement",
    "INSERT": "an INSERT statement",
    "LOAD": "an INSTALL or LOAD statement",
    "MERGE_INTO": "a MERGE statement",
    "MULTI": "a statement DuckDB runs as several (such as PIVOT)",
    "PRAGMA": "a PRAGMA (or IMPORT DATABASE) statement",
    "PREPARE": "a PREPARE statement",
    "SET": "a SET, RESET, USE or SET VARIABLE statement",
    "TRANSACTION": "a BEGIN, COMMIT or ROLLBACK statement",
    "UPDATE": "an UPDATE statement",
    "VACUUM": "a VACUUM or ANALYZE statement",
    "VARIABLE_SET": "a SET VARIABLE statement",
}


@dataclass(frozen=True)
class QueryResult:
    """What a QA query returned.

    ``rows`` holds at most the cap asked for; ``truncated`` says there were more,
    and ``row_count`` is ``len(rows)``, not the size of the full result (which is
    never computed to the end, so it is not known).
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    row_count: int
    elapsed_s: float


def check_query(con: duckdb.DuckDBPyConnection, sql: str, allowed_views: Collection[str]) -> str:
    """Return the single SELECT statement in ``sql``, stripped, or raise QueryRefused.

    ``con`` is used to parse the text and to confirm that the documented views
    the query names exist as views; it runs nothing the user wrote.
    """
    views = {name.casefold(): name for name in allowed_views}
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"The query could not be read: {exc}") from exc
    if not statements:
        raise QueryRefused("There is no SQL statement to run.")
    if len(statements) > 1:
        raise QueryRefused(
            f"Only one statement may run at a time; this text holds {len(statements)} statements."
        )
    try:
        kind = statements[0].type.name
    except ValueError as exc:
        raise QueryRefused("Only SELECT statements may run here.") from exc
    if kind != "SELECT":
        what = _STATEMENT_WORDS.get(kind, f"a {kind} statement")
        raise QueryRefused(f"Only SELECT statements may run here; this is {what}.")
    text = statements[0].query.strip()
    tree = _parse_tree(con, text)
    checker = _Checker(views)
    checker.statement(tree)
    _confirm_views_exist(con, checker.used_views)
    return text


def run_query(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    allowed_views: Collection[str],
    max_rows: int,
    *,
    timeout_s: float | None = None,
) -> QueryResult:
    """Check ``sql`` and run it on ``cursor``, fetching at most ``max_rows`` rows.

    The result is streamed: DuckDB computes only as far as needed for
    ``max_rows + 1`` rows, so a huge result costs no more than its first page
    (sorts and aggregates still read their whole input). The unread rest stays
    attached to ``cursor`` until its next ``execute`` or ``close``.

    To stop a running query from another thread, call ``cancel_query(cursor)``
    (that is ``cursor.interrupt()``); ``timeout_s`` does the same after that many
    seconds. Either way this function raises QueryRefused titled
    "Query cancelled". Use one cursor per query runner: an interrupt stops
    whatever that cursor is running.
    """
    if max_rows < 0:
        raise ValueError("max_rows must not be negative")
    statement = check_query(cursor, sql, allowed_views)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        cursor.interrupt()

    timer = threading.Timer(timeout_s, expire) if timeout_s is not None else None
    started = time.perf_counter()
    try:
        if timer is not None:
            timer.start()
        cursor.execute(statement)
        columns = [str(column[0]) for column in cursor.description or ()]
        rows: list[tuple[Any, ...]] = list(cursor.fetchmany(max_rows + 1))
    except duckdb.InterruptException as exc:
        if expired.is_set():
            message = f"The query ran longer than {timeout_s:g} s and was stopped."
        else:
            message = "The query was cancelled before it finished."
        raise QueryRefused(message, title="Query cancelled") from exc
    except duckdb.Error as exc:
        raise QueryRefused(f"DuckDB could not run the query: {exc}", title="Query failed") from exc
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
    elapsed = time.perf_counter() - started
    truncated = len(rows) > max_rows
    rows = rows[:max_rows]
    return QueryResult(columns, rows, truncated, len(rows), elapsed)


def cancel_query(cursor: duckdb.DuckDBPyConnection) -> None:
    """Stop what ``cursor`` is running; safe to call from any thread, or when idle.

    The thread inside ``run_query`` on that cursor gets QueryRefused titled
    "Query cancelled". An interrupt sent while the cursor is idle does not
    affect its next query.
    """
    cursor.interrupt()


def _parse_tree(con: duckdb.DuckDBPyConnection, text: str) -> dict[str, Any]:
    try:
        row = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    except duckdb.Error as exc:
        raise QueryRefused(f"The query could not be checked: {exc}") from exc
    if row is None or not isinstance(row[0], str):
        raise QueryRefused("The query could not be checked.")
    tree = json.loads(row[0])
    if not isinstance(tree, dict):
        raise QueryRefused("The query could not be checked.")
    if tree.get("error"):
        detail = tree.get("error_message", "unknown error")
        raise QueryRefused(f"The query could not be checked: {detail}")
    statements = tree.get("statements")
    if not isinstance(statements, list) or len(statements) != 1:
        raise QueryRefused("Only one statement may run at a time.")
    statement = statements[0]
    if not isinstance(statement, dict):
        raise QueryRefused("The query could not be checked.")
    return statement


def _confirm_views_exist(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
    """A listed view that does not exist would let DuckDB look for a file or object by that name."""
    wanted = sorted(set(names))
    if not wanted:
        return
    found = {
        str(row[0]).casefold()
        for row in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT internal"
        ).fetchall()
    }
    for name in wanted:
        if name not in found:
            raise QueryRefused(f"'{name}' is a documented view but this database has no such view.")


def _looks_like_path(name: str) -> bool:
    return any(character in _PATH_CHARACTERS for character in name)


class _Checker:
    """Walks one serialised SELECT statement; raises QueryRefused at the first thing not allowed.

    ``scope`` is the set of WITH names visible at a point of the tree, folded to
    lower case. It follows DuckDB's binding: a WITH body sees the names defined
    before it, and itself only in the recursive half of a recursive CTE. Any
    other name in FROM would be looked up in the catalogue or read as a file.
    """

    def __init__(self, views: dict[str, str]) -> None:
        self.views = views
        self.used_views: set[str] = set()

    def statement(self, statement: dict[str, Any]) -> None:
        self._children(statement, frozenset())

    def _refuse_name(self, name: str) -> QueryRefused:
        return QueryRefused(
            f"{name} is not allowed: queries may use only the documented views "
            f"({self._view_list()}) and plain scalar and aggregate functions."
        )

    def _view_list(self) -> str:
        return ", ".join(sorted(self.views.values())) or "none"

    def _visit(self, value: Any, scope: frozenset[str]) -> None:
        if isinstance(value, list):
            for item in value:
                self._visit(item, scope)
        elif isinstance(value, dict):
            kind = value.get("type")
            if "class" in value:
                self._expression(value, scope)
            elif not isinstance(kind, str):
                self._children(value, scope)
            elif kind in _QUERY_NODES:
                self._query_node(value, scope)
            elif kind in _CLAUSE_TYPES or kind in _PLAIN_TABLE_REFS:
                self._children(value, scope)
            else:
                self._table_ref(value, kind, scope)

    def _children(
        self, node: dict[str, Any], scope: frozenset[str], skip: Collection[str] = ()
    ) -> None:
        for key, value in node.items():
            if key not in _SKIPPED_KEYS and key not in skip:
                self._visit(value, scope)

    def _query_node(
        self, node: dict[str, Any], scope: frozenset[str], recursive_name: str | None = None
    ) -> None:
        inner = scope
        for entry in _cte_entries(node):
            name, body = entry
            if _looks_like_path(name):
                raise QueryRefused(
                    f"The WITH name '{name}' looks like a file name; use a plain name."
                )
            self._cte_body(name, body, inner)
            inner = inner | {name.casefold()}
        if node.get("type") == "RECURSIVE_CTE_NODE":
            if recursive_name is None:
                raise QueryRefused("This query uses something that is not allowed here.")
            self._visit(node.get("left"), inner)
            self._visit(node.get("right"), inner | {recursive_name})
            self._children(node, inner, skip={"cte_map", "left", "right"})
        else:
            self._children(node, inner, skip={"cte_map"})

    def _cte_body(self, name: str, body: dict[str, Any], scope: frozenset[str]) -> None:
        query = body.get("query_node")
        if not isinstance(query, dict):
            raise QueryRefused(f"The WITH clause '{name}' could not be checked.")
        kind = query.get("type")
        if kind == "RECURSIVE_CTE_NODE" and str(query.get("cte_name", "")).casefold() == (
            name.casefold()
        ):
            self._query_node(query, scope, recursive_name=name.casefold())
        elif kind in _QUERY_NODES:
            self._query_node(query, scope)
        else:
            raise QueryRefused(f"This query uses something that is not allowed here ({kind}).")
        self._children(body, scope, skip={"query_node"})

    def _table_ref(self, ref: dict[str, Any], kind: str, scope: frozenset[str]) -> None:
        if kind == "BASE_TABLE":
            self._base_table(ref, scope)
            return
        if kind == "TABLE_FUNCTION":
            function = ref.get("function")
            name = function.get("function_name", "?") if isinstance(function, dict) else "?"
            raise self._refuse_name(str(name))
        if kind == "SHOW_REF":
            raise QueryRefused(
                "DESCRIBE, SHOW and SUMMARIZE are not allowed here; the documented views "
                "and their columns are described in the QA guide."
            )
        if kind == "PIVOT":
            raise QueryRefused(
                "PIVOT and UNPIVOT are not allowed here; use GROUP BY with "
                "FILTER (WHERE ...) or CASE instead."
            )
        raise QueryRefused(f"This query uses something that is not allowed here ({kind}).")

    def _base_table(self, ref: dict[str, Any], scope: frozenset[str]) -> None:
        table = str(ref.get("table_name", ""))
        qualified = ref.get("qualified_name")
        path = (
            [str(part) for part in qualified.get("path", [])]
            if isinstance(qualified, dict)
            else [p for p in (ref.get("catalog_name"), ref.get("schema_name"), table) if p]
        )
        shown = ".".join(path) or table
        if ref.get("at_clause") is not None:
            raise QueryRefused("Reading earlier versions of a table (AT ...) is not allowed here.")
        plain = (
            bool(path)
            and path[-1] == table
            and [part.casefold() for part in path[:-1]] in ([], ["main"])
            and not ref.get("catalog_name")
            and str(ref.get("schema_name", "")).casefold() in ("", "main")
        )
        folded = table.casefold()
        if plain and len(path) == 1 and folded in scope:
            return
        if plain and folded in self.views:
            self.used_views.add(folded)
            return
        if any(_looks_like_path(part) for part in path or [table]):
            raise QueryRefused(
                f"'{shown}' is a file name, not one of the documented views; files cannot be "
                f"read here. The documented views are: {self._view_list()}."
            )
        raise QueryRefused(
            f"Table '{shown}' is not one of the documented views: {self._view_list()}."
        )

    def _expression(self, node: dict[str, Any], scope: frozenset[str]) -> None:
        cls = node.get("class")
        kind = node.get("type")
        if cls == "PARAMETER":
            raise QueryRefused(
                "Query parameters ($1, ?) are not supported here; write the values into the query."
            )
        if cls not in _EXPRESSION_CLASSES:
            raise QueryRefused(f"This query uses something that is not allowed here ({cls}).")
        if cls == "CONSTANT":
            return
        if cls == "OPERATOR" and kind not in _OPERATOR_TYPES:
            raise QueryRefused(f"This query uses something that is not allowed here ({kind}).")
        if cls in ("FUNCTION", "WINDOW"):
            self._function(node)
        self._children(node, scope)

    def _function(self, node: dict[str, Any]) -> None:
        name = str(node.get("function_name", ""))
        qualified = node.get("qualified_name")
        path = [str(p) for p in qualified.get("path", [])] if isinstance(qualified, dict) else []
        if node.get("schema") or node.get("catalog") or path not in ([], [name]):
            raise self._refuse_name(".".join(path) or name)
        allowed = WINDOW_FUNCTIONS if node.get("class") == "WINDOW" else ALLOWED_FUNCTIONS
        if name.casefold() not in allowed:
            raise self._refuse_name(name)
        if node.get("export_state"):
            raise QueryRefused("EXPORT_STATE is not allowed here.")


def _cte_entries(node: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cte_map = node.get("cte_map") or {}
    entries = cte_map.get("map", []) if isinstance(cte_map, dict) else None
    if not isinstance(entries, list):
        raise QueryRefused("The WITH clause could not be checked.")
    result: list[tuple[str, dict[str, Any]]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), dict):
            raise QueryRefused("The WITH clause could not be checked.")
        result.append((str(entry.get("key", "")), entry["value"]))
    return result
