"""Making a report at a terminal: a small form, then the core writes it and records it.

The form checks only what a person typed (a known kind and format, dates the
terminal can read); whether the person may make the report is the core's
decision (``view_records``), recorded with the export. The report is written
into the plant's reports folder; the screen shows where, with the row count
and the integrity line of the rows it holds.
"""

from __future__ import annotations

from datetime import tzinfo

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from hmi.core.reports import FORMATS, KINDS, ReportOutcome, ReportRequest
from hmi.ui.core_call import CoreAccess
from hmi.ui.screens.audit import parse_local
from hmi.ui.screens.base import CustosForm

FIELDS = (
    ("kind", "Report", " | ".join(k for k in KINDS if k != "run")),
    ("from", "From", "YYYY-MM-DD [HH:MM], local time; empty: the first record"),
    ("to", "To", "YYYY-MM-DD [HH:MM], local time; empty: now"),
    ("user", "User ID", "only this user's rows; empty: everyone"),
    ("format", "Format", " | ".join(FORMATS)),
)


class ReportDialog(CustosForm[ReportRequest]):
    """Kind, period, user and format of a report; Enter on the format (or Write) goes."""

    submit_field = "format"

    def __init__(self, tz: tzinfo | None, **values: str) -> None:
        super().__init__()
        self.tz = tz
        self.values = values

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Write a report (recorded in the audit trail)", classes="dialog-title")
            for name, label, hint in FIELDS:
                yield Label(label)
                yield Input(self.values.get(name, ""), placeholder=hint, id=name)
            yield Static("", id="notice")
            with Horizontal(classes="buttons"):
                yield Button("Write report", id="go", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#kind", Input).focus()

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def submit(self) -> None:
        notice = self.query_one("#notice", Static)
        kind, fmt = self.value("kind").lower(), self.value("format").lower() or "pdf"
        if kind not in KINDS or kind == "run":
            notice.update(f"Report: write one of {FIELDS[0][2]}.")
            return
        if fmt not in FORMATS:
            notice.update(f"Format: write one of {FIELDS[4][2]}.")
            return
        try:
            start = parse_local(self.value("from"), self.tz)
            end = parse_local(self.value("to"), self.tz)
        except ValueError as exc:
            notice.update(str(exc))
            return
        if start is not None and end is not None and end <= start:
            notice.update("To must be after From.")
            return
        self.dismiss(ReportRequest(kind, fmt, start, end, self.value("user") or None))


def outcome_text(done: ReportOutcome, tz: tzinfo | None) -> str:
    del tz  # the integrity line already carries local times with their offset
    word = "INTEGRITY OK" if done.integrity_ok else "INTEGRITY FAILED"
    return (
        f"Report written: {done.path} ({done.row_count} rows, {done.fmt}); manifest "
        f"{done.manifest_path}. {word}: {done.integrity_summary}"
    )


def write_report(
    node: CoreAccess, request: ReportRequest, shown: Static, tz: tzinfo | None
) -> None:
    """Ask the core for the report and show where it was written (or the refusal)."""
    reports = node.api.reports
    if reports is None:
        shown.update("This terminal cannot write reports.")
        return
    shown.display = True
    shown.update("Writing the report…")

    def done(outcome: ReportOutcome) -> None:
        shown.update(outcome_text(outcome, tz))
        node.custos.notify(f"Report written: {outcome.path}")

    node.call_core(
        reports.report(node.session, node.origin, request),
        done=done,
        failed=lambda _: shown.update("The report was not written."),
    )
