"""QA's read-only SQL access (SUP-11): permission, guard, row cap, and a record of every query.

Queries run on a cursor of their own in a worker thread; the guard
(``qa_guard``) lets through only single SELECT statements over the
documented views using plain functions. Every attempt, run or refused, is
recorded in ``qa_queries`` with its author.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import duckdb

from hmi.core.errors import HmiError, PermissionDenied, QueryRefused
from hmi.core.identity import Session
from hmi.core.records import QueryEntry
from hmi.store.qa_guard import QueryResult, run_query

if TYPE_CHECKING:
    from hmi.bootstrap import Services

QA_VIEWS = (
    "audit_trail",
    "esignatures",
    "security_events",
    "alarm_journal",
    "tag_history",
    "captures",
    "procedure_runs",
    "step_events",
    "approvals",
    "config_versions",
    "users",
    "qa_queries",
)
"""The documented views (DESIGN.md's QA contract); those that exist in the database may be read."""

QUERY_PERMISSION = "query_records"


class QaService:
    def __init__(self, services: Services) -> None:
        self.services = services

    def existing_views(self) -> list[str]:
        rows = self.services.store.query(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'"
        )
        present = {str(r[0]) for r in rows}
        return [v for v in QA_VIEWS if v in present]

    def view_columns(self) -> dict[str, list[tuple[str, str]]]:
        """Each documented view with its columns and types, for the console's side panel."""
        views = self.existing_views()
        rows = self.services.store.query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        )
        result: dict[str, list[tuple[str, str]]] = {v: [] for v in views}
        for table, column, dtype in rows:
            if table in result:
                result[table].append((str(column), str(dtype)))
        return result

    def _execute(self, sql: str, max_rows: int) -> QueryResult:
        views = self.existing_views()
        with self.services.store.reader() as cur:
            return run_query(cur, sql, views, max_rows)

    async def run(self, session: Session, sql: str, *, max_rows: int = 10_000) -> QueryResult:
        identity = self.services.identity
        current = identity.require_session(session)
        user = current.user
        record = self.services.recorder.commit

        def entry(outcome: str, rows: int | None = None, reason: str | None = None) -> QueryEntry:
            return QueryEntry(
                user.user_id, user.full_name, current.origin, sql, outcome, rows, reason
            )

        if not identity.policy.permitted(user.roles, QUERY_PERMISSION):
            await record([entry("refused", reason="not permitted to query records")])
            raise PermissionDenied(f"{user.full_name} may not query records (QA role needed).")
        try:
            result = await asyncio.to_thread(self._execute, sql, max_rows)
        except QueryRefused as exc:
            await record([entry("refused", reason=exc.message)])
            raise
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            await record([entry("error", reason=message)])
            raise HmiError(f"The query failed: {message}", title="Query failed") from exc
        await record([entry("ok", rows=result.row_count)])
        return result
