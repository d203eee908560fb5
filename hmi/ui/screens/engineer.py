"""The Engineer screen: configuration files, checked at the key, diffed, submitted signed.

The files are the approved versions (as the runtime read them at start);
edits are drafts on this screen until submitted. Check loads the whole
configuration with the draft in place (``api.config.check``) and lists each
problem with its file and key path; choosing one puts the editor's cursor on
that key. Submit shows the diff's digest in the signature dialog and sends
it back, so what is signed is the change that was shown. A submission is a
proposed configuration version; it takes effect once approved as the policy
asks, at the next restart (Ctrl-O lists the versions; docs/engineer-guide.md).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, OptionList, Static, TextArea

from hmi.core.api_config import ConfigDesk
from hmi.core.api_types import ConfigCheck, ConfigDiff, ConfigFile, ConfigRequest
from hmi.core.errors import HmiError
from hmi.ui.screens.base import CustosDialog, PageScreen
from hmi.ui.screens.esign import SignDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.sign import FormDialog
from hmi.ui.toml_keys import key_line

NO_DESK = HmiError("This terminal offers no configuration editing.")


class DiffDialog(CustosDialog[None]):
    """The diff against the approved version, read only."""

    def __init__(self, diff: ConfigDiff) -> None:
        super().__init__()
        self.diff = diff

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="diff"):
            yield Static(f"Changes to {self.diff.file}", classes="dialog-title")
            yield Static(f"SHA-256 {self.diff.sha256} ({self.diff.size} bytes)", id="digest")
            yield TextArea(self.diff.diff or "(no change)", read_only=True, id="diff-text")
            yield Button("Close", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)


class EngineerScreen(PageScreen):
    page = "engineer"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "check", "Check", priority=True),
        Binding("ctrl+g", "diff", "Diff", priority=True),
        Binding("ctrl+s", "submit", "Submit", priority=True),
        Binding("ctrl+r", "revert", "Revert", priority=True),
        Binding("ctrl+o", "versions", "Versions", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.approved: dict[str, ConfigFile] = {}
        self.drafts: dict[str, str] = {}
        self.current = ""
        self.last_check: ConfigCheck | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="engineer"):
            yield OptionList(id="files")
            with Vertical(id="editing"):
                yield Static("", id="file-title")
                yield TextArea("", language="toml", id="editor", tab_behavior="indent")
                problems: DataTable[str] = DataTable(id="problems", cursor_type="row")
                problems.add_columns("File", "Key", "Problem")
                yield problems
                yield Static("", id="status")

    @property
    def desk(self) -> ConfigDesk:
        if self.api.config is None:
            raise NO_DESK
        return self.api.config

    def on_mount(self) -> None:
        try:
            files = self.desk.files(self.session)
        except HmiError as exc:
            self.custos.show_refusal(exc)
            return
        self.approved = {f.name: f for f in files}
        listing = self.query_one("#files", OptionList)
        listing.add_options([f.name if f.exists else f"{f.name} (absent)" for f in files])
        self.open_file(files[0].name)
        listing.focus()

    # -- files and drafts -----------------------------------------------------------------

    @property
    def editor(self) -> TextArea:
        return self.query_one("#editor", TextArea)

    def open_file(self, name: str) -> None:
        if name == self.current:
            return
        if self.current:
            self.drafts[self.current] = self.editor.text
        self.current = name
        self.editor.load_text(self.drafts.get(name, self.approved[name].text))
        self.query_one("#file-title", Static).update(name)
        self.show_status()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.open_file(list(self.approved)[event.option_index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.editor.focus()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "editor":
            self.show_status()

    def show_status(self, extra: str = "") -> None:
        if not self.current:
            return
        changed = self.editor.text != self.approved[self.current].text
        state = "changed (not submitted)" if changed else "approved version"
        self.query_one("#status", Static).update(f"{self.current}: {state}. {extra}".strip())

    def action_versions(self) -> None:
        """The version history (and rollback); engineers reach it from here."""
        self.custos.open_page("config-versions")

    def action_revert(self) -> None:
        if not self.current:
            return
        self.drafts.pop(self.current, None)
        self.editor.load_text(self.approved[self.current].text)

    # -- check -----------------------------------------------------------------------------

    def action_check(self) -> None:
        if not self.current:
            return
        self.show_status("Checking…")
        self.call_core(
            self.desk.check(self.session, self.current, self.editor.text), done=self.show_check
        )

    def show_check(self, result: ConfigCheck) -> None:
        self.last_check = result
        table: DataTable[str] = self.query_one("#problems", DataTable)
        table.clear()
        for p in result.problems:
            table.add_row(p.file, p.key, p.message)
        if result.ok:
            self.show_status("Check: no problems.")
            return
        self.show_status(f"Check: {len(result.problems)} problem(s).")
        self.go_to_problem(0)

    def go_to_problem(self, index: int) -> None:
        if self.last_check is None or index >= len(self.last_check.problems):
            return
        problem = self.last_check.problems[index]
        if problem.file != self.current and problem.file in self.approved:
            listing = self.query_one("#files", OptionList)
            listing.highlighted = list(self.approved).index(problem.file)
            self.open_file(problem.file)
        line = key_line(self.editor.text, problem.key, problem.message)
        self.editor.move_cursor((line, 0))
        self.editor.scroll_cursor_visible()
        self.query_one("#file-title", Static).update(
            f"{self.current}: {problem.key}: {problem.message}"
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.go_to_problem(event.cursor_row)
        self.editor.focus()

    # -- diff and submit ---------------------------------------------------------------------

    def _diff(self) -> ConfigDiff | None:
        try:
            return self.desk.diff(self.session, self.current, self.editor.text)
        except HmiError as exc:
            self.custos.show_refusal(exc)
            return None

    def action_diff(self) -> None:
        if not self.current:
            return
        diff = self._diff()
        if diff is not None:
            self.app.push_screen(DiffDialog(diff))

    def action_submit(self) -> None:
        if not self.current:
            return
        file, text = self.current, self.editor.text
        diff = self._diff()
        if diff is None:
            return
        if not diff.diff:
            self.notify(f"{file} is unchanged; there is nothing to submit.")
            return

        def reasoned(values: dict[str, str] | None) -> None:
            if values is None:
                return
            reason = values["reason"]
            rows = [
                ("Action", "config change requested"),
                ("Target", f"config:{file}"),
                ("Change", f"diff sha256:{diff.sha256} ({diff.size} bytes)"),
                ("Meaning", "authored"),
                ("Reason", reason),
            ]
            dialog = SignDialog(
                "Electronic signature",
                rows,
                lambda c, _reason: self.desk.submit(
                    self.session, self.origin, file, text, reason, c, shown=diff.sha256
                ),
            )
            self.app.push_screen(dialog, self.submitted)

        self.app.push_screen(
            FormDialog(f"Submit change to {file}", [("reason", "Reason", "")]), reasoned
        )

    def submitted(self, request: ConfigRequest | None) -> None:
        if request is None:
            return
        if request.version and request.state == "approved":
            effect = f"Version {request.version} is approved (the policy asks no one else). " + (
                request.effect or "It takes effect at restart."
            )
        elif request.version:
            effect = (
                f"Proposed as version {request.version}; it needs approval by "
                f"{', '.join(request.needs)} (Ctrl-O: versions)."
            )
        else:
            effect = f"The change to {request.file} is recorded as a signed request."
        lines = [
            effect,
            f"Diff SHA-256: {request.diff_sha256}",
            *(f"Signed: {s}" for s in request.signatures),
        ]
        self.app.push_screen(MessageDialog("Change submitted", "\n".join(lines), kind="outcome"))
        self.show_status(f"Submitted as version {request.version}." if request.version else "")
