"""Configuration versions: history, approval, rejection and rollback (SUP-12).

Every version of the configuration, newest first, with its state, author,
files and the approvals given and still missing. QA (and an administrator,
where the policy asks for one) approve or reject a proposed version with a
full signature; an engineer rolls back to an earlier version, which makes a
new proposal approved like any change. An approved version is written to the
configuration directory; the outcome says what was applied at once
(procedures, alarms, tag fields no driver uses) and what takes effect at the
next restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from hmi.core.api_config import ConfigDesk
from hmi.core.api_types import ConfigDiff, ConfigVersionView
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.ui.format import local_time
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.engineer import NO_DESK, DiffDialog
from hmi.ui.screens.esign import SignDialog
from hmi.ui.screens.message import MessageDialog

TAKES_EFFECT = "The configuration directory holds it now; it takes effect at restart."


def version_rows(v: ConfigVersionView) -> list[tuple[str, str]]:
    rows = [
        ("Version", f"{v.version} ({v.state})"),
        ("Author", v.author),
        ("Files", ", ".join(v.changed) or "(whole configuration)"),
        ("Why", v.reason or "(none given)"),
    ]
    if v.restores_version is not None:
        rows.append(("Restores", f"version {v.restores_version}"))
    rows += [("Approved", a) for a in v.approvals]
    if v.needs:
        rows.append(("Needs", ", ".join(v.needs)))
    return rows


class ConfigVersionsScreen(PageScreen):
    page = "config-versions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide(True)", "Approve"),
        Binding("j", "decide(False)", "Reject"),
        Binding("b", "rollback", "Roll back to"),
        Binding("d", "diff", "Diff"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[ConfigVersionView] = []

    def compose_body(self) -> ComposeResult:
        yield Static("Configuration versions", id="versions-summary")
        yield DataTable(id="versions", cursor_type="row")
        yield Static("", id="version-detail")

    @property
    def desk(self) -> ConfigDesk:
        if self.api.config is None:
            raise NO_DESK
        return self.api.config

    def on_mount(self) -> None:
        table = self.query_one("#versions", DataTable)
        table.add_columns("Version", "State", "Author", "Files", "Needs")
        self.reload()
        table.focus()

    def reload(self) -> None:
        try:
            call = self.desk.versions(self.session)
        except HmiError as exc:
            self.custos.show_refusal(exc)
            return
        self.call_core(call, done=self.show_versions)

    def show_versions(self, versions: list[ConfigVersionView]) -> None:
        self.versions = versions
        table = self.query_one("#versions", DataTable)
        table.clear()
        for v in versions:
            table.add_row(
                str(v.version), v.state, v.author, ", ".join(v.changed), ", ".join(v.needs)
            )
        running = next((v.version for v in versions if v.state == "approved"), None)
        self.query_one("#versions-summary", Static).update(
            f"Configuration versions: {len(versions)}; approved (running at restart): "
            f"{running if running is not None else 'none'}"
        )
        self.show_detail()

    def selected(self) -> ConfigVersionView | None:
        table = self.query_one("#versions", DataTable)
        if not self.versions or table.cursor_row < 0:
            return None
        return self.versions[min(table.cursor_row, len(self.versions) - 1)]

    def show_detail(self) -> None:
        v = self.selected()
        text = "" if v is None else "\n".join(f"{k:<9} {val}" for k, val in version_rows(v))
        if v is not None and v.created is not None:
            text += f"\n{'Created':<9} {local_time(v.created, self.custos.tz)}"
        self.query_one("#version-detail", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def action_diff(self) -> None:
        v = self.selected()
        if v is None:
            return
        data = v.diff.encode("utf-8")
        diff = ConfigDiff(
            f"version {v.version}", v.diff, hashlib.sha256(data).hexdigest(), len(data)
        )
        self.app.push_screen(DiffDialog(diff))

    def action_decide(self, approve: bool) -> None:
        v = self.selected()
        if v is None or v.state != "proposed":
            self.notify("Choose a proposed version to approve or reject.")
            return
        meaning = "approved" if approve else "reviewed (the version is rejected)"
        rows = [*version_rows(v), ("Meaning", meaning)]
        number = v.version

        def act(signature: Credentials, reason: str) -> Awaitable[ConfigVersionView]:
            if approve:
                return self.desk.approve(self.session, self.origin, number, reason, signature)
            return self.desk.reject(self.session, self.origin, number, reason, signature)

        title = "Approve configuration" if approve else "Reject configuration"
        self.app.push_screen(SignDialog(title, rows, act, ask_reason=True), self.decided)

    def action_rollback(self) -> None:
        v = self.selected()
        if v is None:
            return
        rows = [
            ("Action", f"propose a new version restoring version {v.version}"),
            *version_rows(v),
            ("Meaning", "authored"),
        ]
        number = v.version

        def act(signature: Credentials, reason: str) -> Awaitable[ConfigVersionView]:
            return self.desk.rollback(self.session, self.origin, number, reason, signature)

        self.app.push_screen(
            SignDialog("Roll back configuration", rows, act, ask_reason=True), self.decided
        )

    def decided(self, outcome: ConfigVersionView | None) -> None:
        self.reload()
        if outcome is None:
            return
        lines = [f"Version {outcome.version} is {outcome.state}."]
        lines += [f"Signed: {s}" for s in outcome.signed]
        if outcome.state == "approved":
            lines.append(outcome.effect or TAKES_EFFECT)
        elif outcome.needs:
            lines.append(f"Still needs approval by: {', '.join(outcome.needs)}.")
        self.app.push_screen(
            MessageDialog(f"Version {outcome.version}", "\n".join(lines), kind="outcome")
        )
