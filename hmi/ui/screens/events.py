"""Security events and notifications: failed logins, lockouts, password changes, sessions.

The security events (filtered by period, user ID and event) come from the
records desk, which checks ``view_security_events`` and records a refusal;
below them, the notifications addressed to the session's roles (a lockout
reaches the administrators). Times are local with their UTC offset.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from hmi.core.api_records import NotificationRow, SecurityEventRow
from hmi.ui.format import local_time
from hmi.ui.screens.alarm_history import journal_filter
from hmi.ui.screens.base import PageScreen

ROWS = 200
EVENT_COLUMNS = ("Time", "Event", "User", "By", "Terminal", "Detail")
NOTE_COLUMNS = ("Time", "Kind", "For", "Subject", "Message", "Acknowledged by")
FILTERS = (
    ("from", "from: YYYY-MM-DD [HH:MM]"),
    ("to", "to: YYYY-MM-DD [HH:MM]"),
    ("subject", "user ID"),
    ("event", "event"),
)


class EventsScreen(PageScreen):
    page = "events"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reload", "Apply filters", priority=True),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("Security events", classes="page-title")
        with Horizontal(id="events-filters", classes="filters"):
            for name, placeholder in FILTERS:
                yield Input(placeholder=placeholder, id=f"events-{name}")
        events: DataTable[str] = DataTable(id="event-rows", cursor_type="row", zebra_stripes=True)
        yield events
        yield Static("Notifications", classes="page-title", id="notes-title")
        notes: DataTable[str] = DataTable(id="note-rows", cursor_type="row", zebra_stripes=True)
        yield notes
        yield Static("", id="events-status")

    def on_mount(self) -> None:
        self.query_one("#event-rows", DataTable).add_columns(*EVENT_COLUMNS)
        self.query_one("#note-rows", DataTable).add_columns(*NOTE_COLUMNS)
        self.action_reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        records = self.api.records
        f = journal_filter(self, "events", ROWS)
        if records is None or f is None:
            return
        self.query_one("#events-status", Static).update("Reading the security events…")
        self.call_core(records.security_events(self.session, f), done=self.show_events)
        self.call_core(records.notifications(self.session, ROWS), done=self.show_notes)

    def show_events(self, rows: list[SecurityEventRow]) -> None:
        tz = self.custos.tz
        table = self.query_one("#event-rows", DataTable)
        table.clear()
        for r in rows:
            table.add_row(
                local_time(r.ts, tz),
                r.event,
                r.user_id or "",
                r.actor_id or "",
                r.terminal_id or "",
                r.detail or "",
                key=str(r.seq),
            )
        self.query_one("#events-status", Static).update(
            f"{len(rows)} security events, newest first. Ctrl+R applies the filters."
        )

    def show_notes(self, rows: list[NotificationRow]) -> None:
        tz = self.custos.tz
        table = self.query_one("#note-rows", DataTable)
        table.clear()
        for r in rows:
            table.add_row(
                local_time(r.ts, tz),
                r.kind,
                r.audience,
                r.subject or "",
                r.message,
                r.acknowledged_by or "",
                key=str(r.notification_id),
            )
