"""The alarm history: every activation, return, acknowledgement and shelving, as journalled.

Filters by period (local time), tag or alarm ID, and event; newest first. Each
row says when (local time with its UTC offset), which alarm, what happened,
the state it moved from and to, the value and the alarm's message with its
limit, who did it and their comment. The core decides who may read it
(``view_records``) and records a refusal.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from hmi.core.api_records import AlarmHistoryRow, JournalFilter
from hmi.core.errors import HmiError
from hmi.ui.format import local_time
from hmi.ui.screens.audit import parse_local
from hmi.ui.screens.base import PageScreen

ROWS = 200
COLUMNS = ("Time", "Alarm", "Event", "State", "Value", "Message (limit)", "By", "Comment")
FILTERS = (
    ("from", "from: YYYY-MM-DD [HH:MM]"),
    ("to", "to: YYYY-MM-DD [HH:MM]"),
    ("subject", "tag or alarm ID"),
    ("event", "event"),
)


def state_text(row: AlarmHistoryRow) -> str:
    if row.from_state is None and row.to_state is None:
        return ""
    return f"{row.from_state or '—'} → {row.to_state or '—'}"


def actor_text(actor_id: str | None, actor_name: str | None) -> str:
    if actor_id is None:
        return "system"
    return f"{actor_name} ({actor_id})" if actor_name else actor_id


def journal_filter(screen: PageScreen, prefix: str, limit: int = ROWS) -> JournalFilter | None:
    """The filter row's fields as a ``JournalFilter``; None (after saying why) if not a date."""

    def value(name: str) -> str:
        return screen.query_one(f"#{prefix}-{name}", Input).value.strip()

    tz = screen.custos.tz
    try:
        start, end = parse_local(value("from"), tz), parse_local(value("to"), tz)
    except ValueError as exc:
        screen.custos.show_refusal(HmiError(str(exc), title="Not a date"))
        return None
    return JournalFilter(start, end, value("subject") or None, value("event") or None, limit)


class AlarmHistoryScreen(PageScreen):
    page = "alarm-history"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reload", "Apply filters", priority=True),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("Alarm history", classes="page-title")
        with Horizontal(id="history-filters", classes="filters"):
            for name, placeholder in FILTERS:
                yield Input(placeholder=placeholder, id=f"history-{name}")
        table: DataTable[str] = DataTable(id="history-rows", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="history-status")

    def on_mount(self) -> None:
        self.query_one("#history-rows", DataTable).add_columns(*COLUMNS)
        self.action_reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        records = self.api.records
        f = journal_filter(self, "history")
        if records is None or f is None:
            return
        self.query_one("#history-status", Static).update("Reading the alarm journal…")
        self.call_core(records.alarm_history(self.session, f), done=self.show)

    def show(self, rows: list[AlarmHistoryRow]) -> None:
        tz = self.custos.tz
        table = self.query_one("#history-rows", DataTable)
        table.clear()
        for r in rows:
            table.add_row(
                local_time(r.ts, tz),
                r.alarm_id,
                r.event,
                state_text(r),
                r.value or "",
                r.message or "",
                actor_text(r.actor_id, r.actor_name),
                r.comment or "",
                key=str(r.seq),
            )
        more = ""
        if len(rows) >= ROWS:
            more = f" (the newest {ROWS}: narrow the filters for older rows)"
        self.query_one("#history-status", Static).update(
            f"{len(rows)} journal rows, newest first{more}. Ctrl+R applies the filters."
        )
