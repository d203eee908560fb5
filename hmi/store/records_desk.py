"""The store's answers to the records desk (``hmi.core.api_records.RecordsReader``).

Every read runs on a reader cursor of its own in a worker thread, so a long
page or a slow trend never stalls the runtime's event loop, and every filter
is a bound parameter: nothing a person types becomes SQL text. QA's own SQL
goes through ``QaService`` (guard, row cap, record of the query), keyed by the
session so the console can cancel it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from hmi.core.api_records import (
    AlarmHistoryRow,
    AuditFilter,
    AuditRow,
    IntegrityStatus,
    JournalFilter,
    NotificationRow,
    Plain,
    QueryAnswer,
    SecurityEventRow,
    SignatureView,
    VerifyAnswer,
    signature_view,
)
from hmi.core.errors import HmiError
from hmi.core.identity import Session
from hmi.store.anchors import AnchorLog
from hmi.store.qa import QaService
from hmi.store.tables import AUDIT
from hmi.store.verify import VerifyReport, verify_records
from hmi.store.verify_range import verify_range

if TYPE_CHECKING:
    from hmi.bootstrap import Services
    from hmi.store.db import Store

T = TypeVar("T")

_AUDIT_COLUMNS = (
    "seq, ts, actor_id, actor_name, terminal_id, action, target, old_value, new_value, units, "
    "reason, outcome, signature_ids, run_id, step, detail"
)


def _where(conditions: list[tuple[str, object]]) -> tuple[str, list[object]]:
    """``WHERE`` from (condition with one ``?``, value) pairs whose value is given."""
    used = [(c, v) for c, v in conditions if v is not None and v != ""]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in used), [v for _, v in used]


def _journal_where(f: JournalFilter, subject: str) -> tuple[str, list[object]]:
    where, params = _where(
        [("ts >= ?", f.start), ("ts < ?", f.end), ("event = ?", f.event or None)]
    )
    if f.subject:
        where = f"{where} AND {subject}" if where else f" WHERE {subject}"
        params += [f.subject] * subject.count("?")
    return where, params


def plain(value: Any) -> Plain:
    """A value a terminal can show and a remote protocol can carry."""
    if value is None or isinstance(value, (str, int, float, bool, datetime)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


class StoreRecordsReader:
    def __init__(self, store: Store, qa: QaService | None = None) -> None:
        self.store = store
        self.qa = qa
        """QA's query service; without it (reading records only) queries are refused."""

    @classmethod
    def of(cls, services: Services) -> StoreRecordsReader:
        return cls(services.store, QaService(services))

    def _qa(self) -> QaService:
        if self.qa is None:
            raise HmiError("This terminal cannot run queries.", title="Query refused")
        return self.qa

    async def _read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        def work() -> T:
            with self.store.reader() as cur:
                return fn(cur)

        return await asyncio.to_thread(work)

    async def _rows(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        return await self._read(lambda cur: cur.execute(sql, list(params)).fetchall())

    # -- audit trail -----------------------------------------------------------------------

    async def audit_rows(self, f: AuditFilter) -> tuple[list[AuditRow], bool]:
        where, params = _where(
            [
                ("ts >= ?", f.start),
                ("ts < ?", f.end),
                ("actor_id = ?", f.user_id),
                ("action = ?", f.action),
                ("contains(lower(target), lower(?))", f.target),
                ("seq < ?", f.before_seq),
            ]
        )
        rows = await self._rows(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_trail{where} ORDER BY seq DESC LIMIT ?",
            [*params, f.limit + 1],
        )
        more = len(rows) > f.limit
        return [_audit_row(r) for r in rows[: f.limit]], more

    async def audit_integrity(self, first: int, last: int) -> IntegrityStatus:
        keys = self.store.keys
        result = await self._read(lambda cur: verify_range(cur, AUDIT, keys, first, last))
        cp = result.checkpoint
        return IntegrityStatus(
            result.ok,
            result.rows_checked,
            result.summary,
            cp.seq if cp is not None else None,
            cp.ts if cp is not None else None,
            result.failed_seqs,
        )

    async def signatures(self, audit_seq: int) -> list[SignatureView]:
        rows = await self._rows(
            "SELECT e.signature_id, e.signer_id, e.signer_name, e.meaning, e.reason, "
            "e.signed_at, e.signed_content FROM audit_trail a, esignatures e "
            "WHERE a.seq = ? AND list_contains(string_split(a.signature_ids, ','), "
            "e.signature_id) ORDER BY e.seq",
            [audit_seq],
        )
        return [
            signature_view(
                str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4] or ""), r[5], str(r[6])
            )
            for r in rows
        ]

    # -- trends and journals ------------------------------------------------------------------

    async def history(
        self, tag: str, start: datetime, end: datetime, max_points: int
    ) -> tuple[list[tuple[datetime, float]], bool]:
        """Numeric values of ``tag``; above ``max_points``, averaged into equal time buckets."""
        base = "FROM tag_history WHERE tag = ? AND time >= ? AND time < ? AND value IS NOT NULL"
        params: list[object] = [tag, start, end]
        span_us = max(int((end - start).total_seconds() * 1_000_000), 1)

        def read(cur: duckdb.DuckDBPyConnection) -> tuple[list[tuple[datetime, float]], bool]:
            count = cur.execute(f"SELECT count(*) {base}", params).fetchone()
            if count is None or int(count[0]) <= max_points:
                rows = cur.execute(f"SELECT time, value {base} ORDER BY time", params).fetchall()
                return [(r[0], float(r[1])) for r in rows], False
            bucket = "least(?, (epoch_us(time) - epoch_us(?::TIMESTAMPTZ)) * ? // ?)"
            rows = cur.execute(
                f"SELECT min(time), avg(value) {base} GROUP BY {bucket} ORDER BY 1",
                [*params, max_points - 1, start, max_points, span_us],
            ).fetchall()
            return [(r[0], float(r[1])) for r in rows], True

        return await self._read(read)

    async def alarm_history(self, f: JournalFilter) -> list[AlarmHistoryRow]:
        where, params = _journal_where(f, "(tag = ? OR alarm_id = ?)")
        rows = await self._rows(
            "SELECT seq, ts, alarm_id, tag, event, from_state, to_state, value, priority, "
            f"message, actor_id, actor_name, terminal_id, comment FROM alarm_journal{where} "
            "ORDER BY seq DESC LIMIT ?",
            [*params, f.limit],
        )
        return [AlarmHistoryRow(*r) for r in rows]

    async def security_events(self, f: JournalFilter) -> list[SecurityEventRow]:
        where, params = _journal_where(f, "(user_id = ? OR actor_id = ?)")
        rows = await self._rows(
            "SELECT seq, ts, event, user_id, actor_id, terminal_id, detail "
            f"FROM security_events{where} ORDER BY seq DESC LIMIT ?",
            [*params, f.limit],
        )
        return [SecurityEventRow(*r) for r in rows]

    async def notifications(self, audiences: Sequence[str], limit: int) -> list[NotificationRow]:
        rows = await self._rows(
            "SELECT id, ts, audience, kind, message, subject, acknowledged_by FROM notifications "
            "WHERE list_contains(?, audience) ORDER BY id DESC LIMIT ?",
            [list(audiences), limit],
        )
        return [NotificationRow(*r) for r in rows]

    # -- QA SQL ------------------------------------------------------------------------------

    async def query(self, session: Session, sql: str, max_rows: int) -> QueryAnswer:
        result = await self._qa().run(session, sql, max_rows=max_rows, key=session.session_id)
        return QueryAnswer(
            tuple(result.columns),
            tuple(tuple(plain(v) for v in row) for row in result.rows),
            result.truncated,
            result.row_count,
            result.elapsed_s,
        )

    def cancel_query(self, session_id: str) -> bool:
        return self.qa.cancel(session_id) if self.qa is not None else False

    def cancel_all(self) -> int:
        """At shutdown: no query may hold a cursor while the store closes."""
        return self.qa.cancel_all() if self.qa is not None else 0

    async def view_columns(self) -> dict[str, list[tuple[str, str]]]:
        return await asyncio.to_thread(self._qa().view_columns)

    async def verify_all(self) -> VerifyAnswer:
        """The whole check of ``hmi verify`` on the running store, between two transactions,
        so the chains, the checkpoints and anchors.log are read at one moment."""
        data_dir = self.store.data_dir

        def check(con: duckdb.DuckDBPyConnection) -> VerifyReport:
            return verify_records(
                con, data_dir.keys, AnchorLog(data_dir.anchors), images=data_dir.images
            )

        report = await asyncio.to_thread(self.store.exclusive, check)
        return VerifyAnswer(report.ok, report.summary(), tuple(str(p) for p in report.problems))


def _audit_row(r: tuple[Any, ...]) -> AuditRow:
    (
        seq,
        ts,
        actor_id,
        actor_name,
        terminal,
        action,
        target,
        old,
        new,
        units,
        reason,
        outcome,
        sigs,
        run_id,
        step,
        detail,
    ) = r
    ids = tuple(filter(None, str(sigs).split(","))) if sigs else ()
    return AuditRow(
        seq,
        ts,
        actor_id,
        actor_name,
        terminal,
        action,
        target,
        old,
        new,
        units,
        reason,
        outcome,
        ids,
        run_id,
        step,
        detail,
    )
