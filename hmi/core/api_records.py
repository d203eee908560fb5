"""The records side of the Terminal API: audit trail, signatures, trends, journals, QA SQL.

Screens read records only through this desk, never the database, so a remote
terminal gets exactly the same answers and the same refusals. The desk checks
the session and the permission (refusals are recorded, as for commands) and
hands the reading to a ``RecordsReader`` the store implements; QA queries go
to the store's QA service, which checks, guards and records every query itself.
What comes back is plain frozen data, with times as UTC datetimes and signature
manifestations already written out (printed name, local time with offset,
meaning), so no screen has to compose what 11.50 requires.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hmi.core.clock import local_display
from hmi.core.errors import HmiError
from hmi.core.identity import IdentityService, Session
from hmi.core.ports import Recorder
from hmi.core.records import AuditEntry, Origin
from hmi.core.tag_table import TagTable

VIEW_RECORDS = "view_records"
VERIFY_RECORDS = "verify_records"
SECURITY_EVENTS = "view_security_events"
MAX_TREND_POINTS = 2000
MAX_PAGE = 1000

Plain = str | int | float | bool | datetime | None


@dataclass(frozen=True)
class AuditFilter:
    """What an audit page shows; empty fields do not filter. Newest first."""

    start: datetime | None = None
    end: datetime | None = None
    user_id: str | None = None
    action: str | None = None
    target: str | None = None
    """Matches any target containing this text (case-insensitive)."""
    before_seq: int | None = None
    """For the next page: only rows older than this sequence number."""
    limit: int = 200


@dataclass(frozen=True)
class AuditRow:
    seq: int
    ts: datetime
    actor_id: str | None
    actor_name: str | None
    terminal_id: str | None
    action: str
    target: str | None
    old_value: str | None
    new_value: str | None
    units: str | None
    reason: str | None
    outcome: str
    signature_ids: tuple[str, ...]
    run_id: str | None
    step: str | None
    detail: str | None


@dataclass(frozen=True)
class IntegrityStatus:
    """Whether the rows shown are intact: their chain and its signed checkpoint."""

    ok: bool
    rows_checked: int
    summary: str
    """``OK: ...`` or ``FAILED: audit_records seq 17: ...``: shown as it is."""
    checkpoint_seq: int | None
    checkpoint_time: datetime | None
    failed_seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class AuditPage:
    rows: tuple[AuditRow, ...]
    integrity: IntegrityStatus
    more: bool
    """True when older rows match too (ask again with ``before_seq``)."""


@dataclass(frozen=True)
class SignatureView:
    signature_id: str
    signer_id: str
    signer_name: str
    meaning: str
    reason: str
    signed_at: datetime
    signed_content: str
    manifestation: str
    """Printed name (user ID), local date and time with UTC offset, meaning (11.50)."""


def signature_view(
    signature_id: str,
    signer_id: str,
    signer_name: str,
    meaning: str,
    reason: str,
    signed_at: datetime,
    signed_content: str,
) -> SignatureView:
    """The manifestation is composed here, the same way the signing dialog confirms it."""
    text = f"{signer_name} ({signer_id}), {local_display(signed_at)}, {meaning}"
    return SignatureView(
        signature_id, signer_id, signer_name, meaning, reason, signed_at, signed_content, text
    )


@dataclass(frozen=True)
class TrendSeries:
    tag: str
    units: str
    low: float | None
    high: float | None
    """Limits from the tag's definition (drawn as lines on the trend)."""
    points: tuple[tuple[datetime, float], ...]
    """(time, value), at most the number asked for: averaged per time bucket if more."""
    downsampled: bool


@dataclass(frozen=True)
class AlarmHistoryRow:
    seq: int
    ts: datetime
    alarm_id: str
    tag: str
    event: str
    from_state: str | None
    to_state: str | None
    value: str | None
    priority: int | None
    message: str | None
    actor_id: str | None
    actor_name: str | None
    terminal_id: str | None
    comment: str | None


@dataclass(frozen=True)
class SecurityEventRow:
    seq: int
    ts: datetime
    event: str
    user_id: str | None
    actor_id: str | None
    terminal_id: str | None
    detail: str | None


@dataclass(frozen=True)
class NotificationRow:
    notification_id: int
    ts: datetime
    audience: str
    kind: str
    message: str
    subject: str | None
    acknowledged_by: str | None


async def fresh_notices(
    records: RecordsDesk | None, session: Session, last_id: int | None
) -> tuple[list[NotificationRow], int | None]:
    """What a terminal pops up now for ``session`` and the ID to remember (``new_notices``);
    nothing, and ``last_id`` kept, when the terminal has no records desk or may not read."""
    if records is None:
        return [], last_id
    try:
        rows = await records.notifications(session, limit=20)
    except HmiError:
        return [], last_id
    return new_notices(rows, session, last_id)


def new_notices(
    rows: Sequence[NotificationRow], session: Session, last_id: int | None
) -> tuple[list[NotificationRow], int]:
    """The notifications a terminal pops up, oldest first, and the newest ID seen.

    Those newer than ``last_id``; on a terminal's first look (``last_id`` None)
    those made since the login, so a decision taken in the first second of a
    session still pops up while older ones stay on the events page.
    """
    if last_id is None:
        fresh = [r for r in rows if r.ts >= session.started_at]
    else:
        fresh = [r for r in rows if r.notification_id > last_id]
    newest = max((r.notification_id for r in rows), default=0)
    return sorted(fresh, key=lambda r: r.notification_id), max(last_id or 0, newest)


@dataclass(frozen=True)
class QueryAnswer:
    columns: tuple[str, ...]
    rows: tuple[tuple[Plain, ...], ...]
    truncated: bool
    """More rows matched than were fetched (``row_count`` is what is shown)."""
    row_count: int
    elapsed_s: float


def answer_csv(answer: QueryAnswer) -> str:
    """The answer as CSV (header first); times in ISO 8601 with their UTC offset."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(answer.columns)
    for row in answer.rows:
        writer.writerow(v.isoformat() if isinstance(v, datetime) else v for v in row)
    return out.getvalue()


@dataclass(frozen=True)
class JournalFilter:
    """Filters of the alarm history and the security events; empty fields do not filter."""

    start: datetime | None = None
    end: datetime | None = None
    subject: str | None = None
    """Alarm history: the tag or alarm ID; security events: the user ID."""
    event: str | None = None
    limit: int = 200


@dataclass(frozen=True)
class VerifyAnswer:
    """``hmi verify`` of a running plant: the same checks, the same words."""

    ok: bool
    summary: str
    problems: tuple[str, ...]


class RecordsReader(Protocol):
    """What the store answers; every method reads off the event loop."""

    async def audit_rows(self, f: AuditFilter) -> tuple[list[AuditRow], bool]: ...

    async def audit_integrity(self, first: int, last: int) -> IntegrityStatus: ...

    async def signatures(self, audit_seq: int) -> list[SignatureView]: ...

    async def history(
        self, tag: str, start: datetime, end: datetime, max_points: int
    ) -> tuple[list[tuple[datetime, float]], bool]: ...

    async def alarm_history(self, f: JournalFilter) -> list[AlarmHistoryRow]: ...

    async def security_events(self, f: JournalFilter) -> list[SecurityEventRow]: ...

    async def notifications(
        self, audiences: Sequence[str], limit: int
    ) -> list[NotificationRow]: ...

    async def query(self, session: Session, sql: str, max_rows: int) -> QueryAnswer: ...

    def cancel_query(self, session_id: str) -> bool: ...

    async def view_columns(self) -> dict[str, list[tuple[str, str]]]: ...

    async def verify_all(self) -> VerifyAnswer: ...


class RecordsDesk:
    def __init__(
        self, identity: IdentityService, table: TagTable, recorder: Recorder, reader: RecordsReader
    ) -> None:
        self.identity = identity
        self.table = table
        self.recorder = recorder
        self.reader = reader

    async def _require(self, session: Session, permission: str, what: str) -> None:
        """A refusal to show records is recorded before it is raised, like any refusal."""
        try:
            self.identity.require_permission(session, permission)
        except HmiError as exc:
            entry = AuditEntry(
                f"view_{what}",
                "refused",
                session.user_id if session.active else None,
                session.user.full_name,
                session.origin,
                detail=f"{exc.title}: {exc.message}"[:2000],
            )
            await self.recorder.commit([entry])
            raise

    # -- verification of the whole record ------------------------------------------------------

    async def verify(self, session: Session, origin: Origin) -> VerifyAnswer:
        """Every chain, checkpoint, anchor and image, while the plant runs (``hmi verify
        --connect``). Writes wait in order while it reads; the check is recorded."""
        await self._require(session, VERIFY_RECORDS, "verification")
        answer = await self.reader.verify_all()
        user = session.user
        entry = AuditEntry(
            "records_verified",
            "done",
            user.user_id,
            user.full_name,
            origin,
            detail=answer.summary[:2000],
        )
        await self.recorder.commit([entry])
        return answer

    # -- audit trail and signatures ----------------------------------------------------------

    async def audit_page(self, session: Session, f: AuditFilter) -> AuditPage:
        """One page of the audit trail, with the integrity of exactly these rows."""
        await self._require(session, VIEW_RECORDS, "audit_trail")
        if not 1 <= f.limit <= MAX_PAGE:
            raise HmiError(f"A page shows 1 to {MAX_PAGE} rows.", title="Not shown")
        rows, more = await self.reader.audit_rows(f)
        if not rows:
            status = IntegrityStatus(True, 0, "No records match; nothing to verify.", None, None)
        else:
            status = await self.reader.audit_integrity(
                min(r.seq for r in rows), max(r.seq for r in rows)
            )
        return AuditPage(tuple(rows), status, more)

    async def signatures(self, session: Session, audit_seq: int) -> list[SignatureView]:
        """The signatures an audit record carries, each with its manifestation."""
        await self._require(session, VIEW_RECORDS, "signatures")
        return await self.reader.signatures(audit_seq)

    # -- trends and journals ----------------------------------------------------------------

    async def trend(
        self,
        session: Session,
        tag: str,
        start: datetime,
        end: datetime,
        max_points: int = 500,
    ) -> TrendSeries:
        """A tag's recorded values over a period, with its units and limits; live session."""
        self.identity.require_session(session)
        try:
            definition = self.table.definition(tag)
        except KeyError:
            raise HmiError(f"There is no tag {tag}.", title="Not shown") from None
        if end <= start:
            raise HmiError("The period must end after it starts.", title="Not shown")
        if not 2 <= max_points <= MAX_TREND_POINTS:
            raise HmiError(f"A trend has 2 to {MAX_TREND_POINTS} points.", title="Not shown")
        points, downsampled = await self.reader.history(tag, start, end, max_points)
        return TrendSeries(
            tag, definition.units, definition.low, definition.high, tuple(points), downsampled
        )

    async def alarm_history(self, session: Session, f: JournalFilter) -> list[AlarmHistoryRow]:
        await self._require(session, VIEW_RECORDS, "alarm_history")
        return await self.reader.alarm_history(_capped(f))

    async def security_events(self, session: Session, f: JournalFilter) -> list[SecurityEventRow]:
        await self._require(session, SECURITY_EVENTS, "security_events")
        return await self.reader.security_events(_capped(f))

    async def notifications(self, session: Session, limit: int = 50) -> list[NotificationRow]:
        """Notifications addressed to the session's roles (lockouts reach administrators) or
        to its user (``user:ID``: the decision on a request for approval they made)."""
        current = self.identity.require_session(session)
        audiences = (*current.user.roles, f"user:{current.user.user_id}")
        return await self.reader.notifications(audiences, min(max(limit, 1), MAX_PAGE))

    # -- QA SQL console --------------------------------------------------------------------

    async def query(self, session: Session, sql: str, max_rows: int = 10_000) -> QueryAnswer:
        """Run QA's SQL: the QA service checks permission and guard and records the query."""
        self.identity.require_session(session)
        return await self.reader.query(session, sql, max_rows)

    def cancel(self, session: Session) -> bool:
        """Stop this session's running query (it ends as "Query cancelled"); False if none."""
        current = self.identity.require_session(session)
        return self.reader.cancel_query(current.session_id)

    async def views(self, session: Session) -> dict[str, list[tuple[str, str]]]:
        """The documented views with their columns and types, for the console's side panel."""
        self.identity.require_session(session)
        return await self.reader.view_columns()


def _capped(f: JournalFilter) -> JournalFilter:
    if not 1 <= f.limit <= MAX_PAGE:
        raise HmiError(f"A page shows 1 to {MAX_PAGE} rows.", title="Not shown")
    return f
