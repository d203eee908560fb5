"""QA's read-only SQL access (SUP-11): permission, guard, row cap, and a record of every query.

Queries run on a cursor of their own in a worker thread; the guard
(``qa_guard``) lets through only single SELECT statements over the
documented views using plain functions. Every attempt, run or refused, is
recorded in ``qa_queries`` with its author.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

import duckdb

from hmi.core.errors import HmiError, PermissionDenied, QueryRefused
from hmi.core.identity import Session
from hmi.core.records import QueryEntry
from hmi.store.qa_guard import QueryResult, cancel_query, run_query

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


class _Running:
    """A query in flight: its cursor once it has one, and whether it was cancelled."""

    def __init__(self) -> None:
        self.cursor: duckdb.DuckDBPyConnection | None = None
        self.cancelled = False


class QaService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        """Key (the session ID) → its query in flight: what ``cancel`` interrupts."""

    def cancel(self, key: str) -> bool:
        """Interrupt the query running under ``key``; False if there is none.

        Safe from any thread. A query cancelled before it reached DuckDB never
        starts; either way ``run`` raises QueryRefused titled "Query cancelled"
        and the attempt is recorded like any refused query.
        """
        with self._lock:
            running = self._running.get(key)
            if running is None:
                return False
        self._interrupt(running)
        return True

    def cancel_all(self, wait_s: float = 5.0) -> int:
        """Interrupt every running query and wait (bounded) until they have let go of their
        cursors: the store cannot close under a running query. Returns how many there were."""
        with self._lock:
            running = list(self._running.values())
        for r in running:
            self._interrupt(r)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    break
            time.sleep(0.01)
        return len(running)

    def _interrupt(self, running: _Running) -> None:
        with self._lock:
            running.cancelled = True
            if running.cursor is not None:
                cancel_query(running.cursor)

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

    def _execute(self, sql: str, max_rows: int, running: _Running) -> QueryResult:
        views = self.existing_views()
        with self.services.store.reader() as cur:
            with self._lock:
                if running.cancelled:
                    raise QueryRefused(
                        "The query was cancelled before it started.", title="Query cancelled"
                    )
                running.cursor = cur
            try:
                return run_query(cur, sql, views, max_rows)
            finally:
                with self._lock:
                    running.cursor = None

    async def run(
        self, session: Session, sql: str, *, max_rows: int = 10_000, key: str | None = None
    ) -> QueryResult:
        """Check, run and record ``sql``; with ``key``, ``cancel(key)`` stops it (one at a time)."""
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
        running = _Running()
        if key is not None:
            with self._lock:
                busy = key in self._running
                if not busy:
                    self._running[key] = running
            if busy:
                busy_reason = "a query from this session is still running"
                await record([entry("refused", reason=busy_reason)])
                raise QueryRefused(
                    "A query from this session is still running; cancel it or wait.",
                    title="Query running",
                )
        try:
            result = await asyncio.to_thread(self._execute, sql, max_rows, running)
        except asyncio.CancelledError:
            self._interrupt(running)  # the caller gave up waiting: stop DuckDB's work too
            raise
        except QueryRefused as exc:
            await record([entry("refused", reason=exc.message)])
            raise
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            await record([entry("error", reason=message)])
            raise HmiError(f"The query failed: {message}", title="Query failed") from exc
        finally:
            if key is not None:
                with self._lock:
                    self._running.pop(key, None)
        await record([entry("ok", rows=result.row_count)])
        return result
