"""The QA SQL console: write a query over the documented views, run it, read and export it.

Like a desktop SQL client (Harlequin's layout: views on the left, editor
above results), but everything goes through ``api.records``: the core checks
the permission, guards the SQL, caps the rows and records every query. The
query runs in a worker while the core waits on a thread, so the screen keeps
refreshing (the running time counts up) and the query can be cancelled,
which interrupts DuckDB itself. Nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, tzinfo
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static, TextArea, Tree

from hmi.core.api_records import Plain, QueryAnswer, RecordsDesk, answer_csv
from hmi.core.errors import HmiError
from hmi.core.reports import ReportRequest
from hmi.ui.format import local_time
from hmi.ui.screens.base import PageScreen

TICK_S = 0.1
EXAMPLE = "SELECT seq, ts, actor_id, action, target, outcome\nFROM audit_trail\nORDER BY seq DESC"


def cell(value: Plain, tz: tzinfo | None = None) -> str:
    """NULL said as such; times in local time with their offset, like every screen."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return local_time(value, tz)
    return str(value)


def answer_status(answer: QueryAnswer) -> str:
    rows = f"{answer.row_count} row{'s' if answer.row_count != 1 else ''}"
    cut = " (more rows matched: cut off at the row cap)" if answer.truncated else ""
    return f"{rows} in {answer.elapsed_s:.3f} s{cut}"


class QaConsoleScreen(PageScreen):
    page = "qa"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "run", "Run", priority=True),
        Binding("ctrl+k", "cancel_query", "Cancel query", priority=True),
        Binding("ctrl+e", "export", "Export CSV", priority=True),
        Binding("ctrl+p", "report", "Report", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.answer: QueryAnswer | None = None
        self.started: float | None = None
        """Monotonic start of the running query; None when none runs."""

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="qa-body"):
            yield Tree("Views", id="views")
            with Vertical(id="qa-main"):
                yield TextArea(
                    EXAMPLE, language="sql", id="sql", show_line_numbers=True, soft_wrap=True
                )
                yield Static("Ctrl+R runs the query; Ctrl+K cancels it.", id="qa-status")
                yield DataTable(id="results", zebra_stripes=True)
                with Horizontal(id="export-row"):
                    yield Static("Export to:", classes="field-label")
                    yield Input(placeholder="file path, e.g. /tmp/result.csv", id="csv-path")

    def on_mount(self) -> None:
        self.query_one("#views", Tree).root.expand()
        self.call_core(self.api_records().views(self.session), done=self.show_views)
        self.set_interval(TICK_S, self.tick)
        self.query_one("#sql", TextArea).focus()

    def api_records(self) -> RecordsDesk:
        records = self.api.records
        if records is None:
            raise HmiError("This terminal has no records desk.", title="Not available")
        return records

    def show_views(self, views: dict[str, list[tuple[str, str]]]) -> None:
        tree = self.query_one("#views", Tree)
        tree.root.remove_children()
        for name, columns in views.items():
            node = tree.root.add(name, data=name)
            for column, dtype in columns:
                node.add_leaf(f"{column} {dtype.lower()}", data=column)

    # -- running -------------------------------------------------------------------------

    def status(self, text: str) -> None:
        self.query_one("#qa-status", Static).update(text)

    def tick(self) -> None:
        """Counts the running time up: a frozen screen would show a frozen number."""
        if self.started is not None:
            elapsed = time.monotonic() - self.started
            self.status(f"Running… {elapsed:.1f} s (Ctrl+K cancels)")

    def action_run(self) -> None:
        if self.started is not None:
            self.notify("A query is running; Ctrl+K cancels it.")
            return
        sql = self.query_one("#sql", TextArea).text.strip()
        if not sql:
            self.status("Write a SELECT over the views on the left.")
            return
        self.started = time.monotonic()
        self.tick()
        self.call_core(
            self.api_records().query(self.session, sql), done=self.show, failed=self.ended
        )

    def action_cancel_query(self) -> None:
        if self.started is None:
            return
        self.api_records().cancel(self.session)
        self.status("Cancelling…")

    def ended(self, error: HmiError) -> None:
        self.started = None
        self.status(f"{error.title}: {error.message}")

    def show(self, answer: QueryAnswer) -> None:
        self.started = None
        self.answer = answer
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        table.add_columns(*answer.columns)
        tz = self.custos.tz
        table.add_rows([tuple(cell(v, tz) for v in row) for row in answer.rows])
        self.status(answer_status(answer))

    # -- export --------------------------------------------------------------------------

    def action_export(self) -> None:
        path_text = self.query_one("#csv-path", Input).value.strip()
        if self.answer is None:
            self.notify("Run a query first; its rows are what is exported.")
            return
        if not path_text:
            self.query_one("#csv-path", Input).focus()
            self.notify("Enter the file to export to, then Ctrl+E.")
            return
        self.run_worker(self._export(Path(path_text).expanduser(), self.answer), group="export")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "csv-path":
            event.stop()
            self.action_export()

    async def _export(self, path: Path, answer: QueryAnswer) -> None:
        text = answer_csv(answer)
        try:
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        except OSError as exc:
            self.custos.show_refusal(
                HmiError(f"{path} could not be written: {exc.strerror}.", title="Not exported")
            )
            return
        self.status(f"{answer.row_count} rows exported to {path}")

    # -- reports -------------------------------------------------------------------------

    def action_report(self) -> None:
        """The report form (audit trail, alarms, signatures, ...), written to DATA/reports."""
        from hmi.ui.screens.report import ReportDialog, write_report

        tz = self.custos.tz

        def chosen(request: ReportRequest | None) -> None:
            if request is not None:
                write_report(self, request, self.query_one("#qa-status", Static), tz)

        self.app.push_screen(ReportDialog(tz, kind="audit", format="pdf"), chosen)
