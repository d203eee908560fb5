"""The approvals page: requests waiting for a second person, approved or rejected signed.

Each request shows who asked, from which terminal, exactly what changes
(old → new with units), why, and when it expires. The decision is a full
signature (user ID and password, whoever is logged in), with the meaning
``approved`` or ``rejected``; the core checks the command again before it
writes, and refuses a decision by the person who asked.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from hmi.core.api_types import CommandOutcome, Decision, PendingApproval
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.ui.format import local_time, value_text
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.esign import SignDialog
from hmi.ui.screens.message import MessageDialog

REFRESH_S = 1.0


def change_text(p: PendingApproval) -> str:
    return f"{p.tag}: {value_text(p.old_value)} → {value_text(p.new_value)} {p.units}".rstrip()


def approval_rows(p: PendingApproval, tz: object = None) -> list[tuple[str, str]]:
    return [
        ("Request", p.approval_id),
        ("Asked by", f"{p.requester_name} ({p.requester_id})"),
        ("Terminal", p.terminal_id),
        ("Action", p.action.replace("_", " ")),
        ("Change", change_text(p)),
        ("Why", p.reason or "(none given)"),
        ("Asked", local_time(p.requested_at, tz)),  # type: ignore[arg-type]
        ("Expires", local_time(p.expires_at, tz)),  # type: ignore[arg-type]
    ]


class ApprovalsScreen(PageScreen):
    page = "approvals"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide(True)", "Approve"),
        Binding("j", "decide(False)", "Reject"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[PendingApproval] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="approval-summary")
        yield DataTable(id="approvals", cursor_type="row")
        yield Static("", id="approval-detail")

    def on_mount(self) -> None:
        table = self.query_one("#approvals", DataTable)
        table.add_columns("Change", "Asked by", "Terminal", "Expires")
        self.refresh_pending()
        self.set_interval(REFRESH_S, self.refresh_pending)
        table.focus()

    def refresh_pending(self) -> None:
        if self.custos.session is None:
            return
        try:
            pending = self.api.pending_approvals(self.session)
        except HmiError:
            return
        table = self.query_one("#approvals", DataTable)
        keep = table.cursor_row
        if [p.approval_id for p in pending] != [p.approval_id for p in self.pending]:
            table.clear()
            for p in pending:
                expires = local_time(p.expires_at, self.custos.tz)[11:19]
                table.add_row(change_text(p), p.requester_id, p.terminal_id, expires)
            if pending:
                table.move_cursor(row=min(max(keep, 0), len(pending) - 1), animate=False)
        self.pending = pending
        self.query_one("#approval-summary", Static).update(
            f"Waiting for approval: {len(pending)}" if pending else "Nothing waits for approval."
        )
        self.show_detail()

    def selected(self) -> PendingApproval | None:
        table = self.query_one("#approvals", DataTable)
        if not self.pending or table.cursor_row < 0:
            return None
        return self.pending[min(table.cursor_row, len(self.pending) - 1)]

    def show_detail(self) -> None:
        p = self.selected()
        detail = self.query_one("#approval-detail", Static)
        if p is None:
            detail.update("")
            return
        detail.update("\n".join(f"{k:<9} {v}" for k, v in approval_rows(p, self.custos.tz)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def action_decide(self, approve: bool) -> None:
        p = self.selected()
        if p is None:
            self.notify("Nothing selected: no request waits for approval.")
            return
        meaning = "approved" if approve else "reviewed (the request is rejected)"
        rows = [*approval_rows(p, self.custos.tz), ("Meaning", meaning)]

        def act(signature: Credentials, reason: str) -> Awaitable[CommandOutcome | None]:
            assert signature.user_id is not None
            decision = Decision(
                p.approval_id, approve, signature.user_id, signature.password, reason
            )
            return self.api.decide(self.session, self.origin, decision)

        def decided(outcome: CommandOutcome | None) -> None:
            self.refresh_pending()
            if approve and outcome is not None:
                read = value_text(outcome.read_back)
                text = f"{change_text(p)}\nWritten; read back: {read} {p.units}".rstrip()
                self.app.push_screen(MessageDialog("Approved", text, kind="outcome"))

        title = "Approve: electronic signature" if approve else "Reject: electronic signature"
        self.app.push_screen(SignDialog(title, rows, act, second=True, ask_reason=True), decided)
