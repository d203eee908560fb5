"""The audit trail: who did what, when, where, to what; filtered, paged, and verified.

Every page says whether the rows on it are intact (their chain and the signed
checkpoint it reaches, as the core words it) above the rows themselves, so a
reviewer never reads a record without its integrity. Enter on a row shows its
signatures with their manifestation: printed name, local date and time with
the UTC offset, and meaning (11.50). The core decides who may see the trail
(``view_records``) and records a refusal.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from hmi.core.api_records import AuditFilter, AuditPage, AuditRow, SignatureView
from hmi.core.errors import HmiError
from hmi.core.reports import ReportRequest
from hmi.ui.format import local_time
from hmi.ui.screens.base import PageScreen

PAGE_ROWS = 100
COLUMNS = ("Seq", "Time", "User", "Terminal", "Action", "Target", "Change", "Outcome", "Reason")
FILTERS = (
    ("from", "from: YYYY-MM-DD [HH:MM]"),
    ("to", "to: YYYY-MM-DD [HH:MM]"),
    ("user", "user ID"),
    ("action", "action"),
    ("target", "target contains"),
)


def parse_local(text: str, tz: tzinfo | None) -> datetime | None:
    """A date, or date and time, typed in the terminal's local time; None when empty."""
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()
    raise ValueError(f"{text!r} is not a date: write YYYY-MM-DD or YYYY-MM-DD HH:MM.")


def change_text(row: AuditRow) -> str:
    if row.old_value is None and row.new_value is None:
        return ""
    units = f" {row.units}" if row.units else ""
    return f"{row.old_value if row.old_value is not None else '—'} → {row.new_value}{units}"


def integrity_text(page: AuditPage, tz: tzinfo | None) -> str:
    status = page.integrity
    word = "INTEGRITY OK" if status.ok else "INTEGRITY FAILED"
    when = ""
    if status.checkpoint_time is not None:
        when = f" [checkpoint {status.checkpoint_seq}, {local_time(status.checkpoint_time, tz)}]"
    return f"{word}: {status.summary}{when}"


def signatures_text(audit_seq: int, signatures: list[SignatureView]) -> str:
    if not signatures:
        return f"Record {audit_seq} carries no signature."
    lines = [f"Signatures of record {audit_seq}:"]
    lines += [f"  {s.manifestation}" + (f" — {s.reason}" if s.reason else "") for s in signatures]
    return "\n".join(lines)


class AuditScreen(PageScreen):
    page = "audit"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reload", "Apply filters", priority=True),
        Binding("ctrl+n", "older", "Older rows", priority=True),
        Binding("enter", "signatures", "Signatures", show=True, priority=False),
        Binding("ctrl+p", "report", "Report", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = AuditFilter(limit=PAGE_ROWS)
        self.page_data: AuditPage | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="audit-filters"):
            for name, placeholder in FILTERS:
                yield Input(placeholder=placeholder, id=f"filter-{name}")
        yield Static("Integrity: not checked yet", id="integrity")
        table: DataTable[str] = DataTable(id="audit-rows", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="signatures")

    def on_mount(self) -> None:
        self.query_one("#audit-rows", DataTable).add_columns(*COLUMNS)
        self.action_reload()

    # -- loading -------------------------------------------------------------------------

    def _filters(self) -> AuditFilter | None:
        def value(name: str) -> str:
            return self.query_one(f"#filter-{name}", Input).value.strip()

        tz = self.custos.tz
        try:
            start, end = parse_local(value("from"), tz), parse_local(value("to"), tz)
        except ValueError as exc:
            self.custos.show_refusal(HmiError(str(exc), title="Not a date"))
            return None
        return AuditFilter(
            start,
            end,
            value("user") or None,
            value("action") or None,
            value("target") or None,
            limit=PAGE_ROWS,
        )

    def action_reload(self) -> None:
        f = self._filters()
        if f is not None:
            self.filter = f
            self._load(f)

    def action_older(self) -> None:
        page = self.page_data
        if page is None or not page.more or not page.rows:
            self.notify("No older rows match.")
            return
        f = self.filter
        self._load(
            AuditFilter(f.start, f.end, f.user_id, f.action, f.target, page.rows[-1].seq, f.limit)
        )

    def _load(self, f: AuditFilter) -> None:
        records = self.api.records
        if records is None:
            return
        self.query_one("#integrity", Static).update("Integrity: checking…")
        self.call_core(records.audit_page(self.session, f), done=self.show)

    def show(self, page: AuditPage) -> None:
        self.page_data = page
        tz = self.custos.tz
        banner = self.query_one("#integrity", Static)
        banner.update(integrity_text(page, tz))
        banner.set_class(not page.integrity.ok, "failed")
        table = self.query_one("#audit-rows", DataTable)
        table.clear()
        for r in page.rows:
            table.add_row(
                str(r.seq),
                local_time(r.ts, tz),
                r.actor_id or "",
                r.terminal_id or "",
                r.action + (" ✎" if r.signature_ids else ""),
                r.target or "",
                change_text(r),
                r.outcome,
                r.reason or "",
                key=str(r.seq),
            )
        more = " More rows: Ctrl+N." if page.more else ""
        self.query_one("#signatures", Static).update(
            f"{len(page.rows)} rows.{more} Enter on a row shows its signatures (✎)."
        )
        table.focus()

    # -- signatures ----------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_signatures()

    def action_signatures(self) -> None:
        table = self.query_one("#audit-rows", DataTable)
        records = self.api.records
        if records is None or table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is None:
            return
        seq = int(key)

        def shown(signatures: list[SignatureView]) -> None:
            self.query_one("#signatures", Static).update(signatures_text(seq, signatures))

        self.call_core(records.signatures(self.session, seq), done=shown)

    # -- report --------------------------------------------------------------------------

    def action_report(self) -> None:
        """The report form, filled from the filters shown; the report goes to DATA/reports."""
        from hmi.ui.screens.report import ReportDialog, write_report

        def value(name: str) -> str:
            return self.query_one(f"#filter-{name}", Input).value.strip()

        def chosen(request: ReportRequest | None) -> None:
            if request is not None:
                write_report(self, request, self.query_one("#signatures", Static), self.custos.tz)

        form = ReportDialog(
            self.custos.tz,
            kind="audit",
            format="pdf",
            user=value("user"),
            **{"from": value("from"), "to": value("to")},
        )
        self.app.push_screen(form, chosen)
