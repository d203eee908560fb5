"""The procedures page: start a run, follow its steps, do what the current step needs.

What may be done now comes from the core (``RunView.choices``): an action
the core would refuse is greyed out in the footer and listed with the core's
reason, so the screen never offers what it could have predicted a refusal
for. Data entered here is checked by the core (pattern, range, choice) when
it is saved; signatures, witnessing, hold, restart and abort go through the
e-sign dialog; setpoint writes and captures of the step go through their own
dialogs with the run attached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select, Static, TabbedContent, TabPane

from hmi.core.api_types import FieldView, RunView
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.core.reports import ReportRequest
from hmi.core.step_rules import Choice
from hmi.ui.format import local_time
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.camera import capture_flow
from hmi.ui.screens.esign import SignDialog
from hmi.ui.screens.forms import ChoiceDialog, ReasonDialog, Reasoned
from hmi.ui.screens.write import change_tag

REFRESH_S = 1.0
STATUS_GLYPH = {"done": "✓ done", "current": "▶ now", "pending": "· next"}
COMMAND_KINDS = ("write_setpoint", "operate", "capture")
ACTION_WORDS = {
    "start": "Start",
    "hold": "Hold",
    "restart": "Restart",
    "abort": "Abort",
    "enter_data": "Enter",
    "sign": "Sign",
    "complete_step": "Complete step",
    "write_setpoint": "Setpoint write of",
    "operate": "Operate",
    "capture": "Capture from",
}
TRANSITIONS = {"hold": "Hold run", "restart": "Restart run", "abort": "Abort run"}


def choice_text(choice: Choice) -> str:
    what = ACTION_WORDS.get(choice.action, choice.action)
    return f"{what} {choice.target}".rstrip() if choice.target else what


def field_hint(f: FieldView) -> str:
    """What the field takes, in words: the core checks it when it is saved."""
    if f.type == "text":
        return f"text, form {f.pattern}" if f.pattern else "text"
    if f.type == "choice":
        return "one of " + ", ".join(f.choices)
    low = "" if f.minimum is None else f"{f.minimum:g}"
    high = "" if f.maximum is None else f"{f.maximum:g}"
    span = f" {low} … {high}" if low or high else ""
    kind = "whole number" if f.type == "int" else "number"
    return f"{kind}{span} {f.units}".rstrip()


def field_widget(f: FieldView) -> Widget:
    wid = f"f-{f.name}"
    if f.type == "choice":
        options = [(c, c) for c in f.choices]
        value = f.value if f.value in f.choices else Select.NULL
        return Select(options, value=value, id=wid, prompt="choose", compact=True)
    kind = {"int": "integer", "float": "number"}.get(f.type, "text")
    return Input(f.value or "", id=wid, type=kind, placeholder=field_hint(f), compact=True)  # type: ignore[arg-type]


class ProceduresScreen(PageScreen):
    page = "procedures"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "start", "Start run"),
        Binding("d", "save_data", "Save data"),
        Binding("g", "sign", "Sign"),
        Binding("w", "witness", "Witness"),
        Binding("c", "complete", "Complete"),
        Binding("e", "command", "Step command"),
        Binding("h", "transition('hold')", "Hold"),
        Binding("r", "transition('restart')", "Restart"),
        Binding("x", "transition('abort')", "Abort"),
        Binding("p", "report", "Run report", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run: RunView | None = None
        self._fields_for: tuple[str, int] | None = None

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="proc-tabs"):
            with TabPane("Procedures", id="pane-procedures"):
                yield DataTable(id="procedures", cursor_type="row")
            with TabPane("Runs", id="pane-runs"):
                yield DataTable(id="runs", cursor_type="row")
            with TabPane("Run", id="pane-run"):
                yield Static("No run selected: open one from Runs, or start one.", id="run-head")
                with Horizontal(id="run-body"):
                    yield DataTable(id="steps", cursor_type="row")
                    with VerticalScroll(id="step-detail", can_focus=False):
                        yield Static("", id="step-title", classes="dialog-title")
                        yield Static("", id="conditions")
                        yield Vertical(id="fields")
                        yield Static("", id="signatures")
                        yield Static("", id="choices")
                note = Static("", id="report-note")
                note.display = False  # until a report is written
                yield note

    def on_mount(self) -> None:
        procedures = self.query_one("#procedures", DataTable)
        procedures.add_columns("Procedure", "Version", "Steps")
        desk = self.api.procedures
        if desk is not None:
            for p in desk.procedures(self.session):
                procedures.add_row(p.title, p.version, str(len(p.steps)), key=p.procedure_id)
        self.query_one("#runs", DataTable).add_columns("Run", "Procedure", "State", "Step", "Since")
        self.query_one("#steps", DataTable).add_columns("#", "Step", "Status")
        self.refresh_runs()
        self.set_interval(REFRESH_S, self.refresh_runs)
        procedures.focus()

    # -- what is shown ----------------------------------------------------------------------

    def refresh_runs(self) -> None:
        desk = self.api.procedures
        if self.custos.session is None or desk is None:
            return
        try:
            runs = desk.runs(self.session)
            if self.run is not None:
                self.run = desk.view(self.session, self.run.run_id)
        except HmiError:
            return  # the session ended; the app is on its way back to login
        table = self.query_one("#runs", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in runs:
            since = local_time(r.created_at, self.custos.tz)[5:16]
            row = (r.run_id[:8], r.title, r.state.upper(), f"{r.step_number} {r.step_title}", since)
            table.add_row(*row, key=r.run_id)
        if runs:
            table.move_cursor(row=min(keep, len(runs) - 1), animate=False)
        self.show_run()

    def show_run(self) -> None:
        run = self.run
        if run is None:
            return
        overdue = "  OVERDUE" if run.overdue else ""
        self.query_one("#run-head", Static).update(
            Text.assemble(
                (f"{run.title} v{run.version} · run {run.run_id[:8]} · ", ""),
                (run.state.upper(), "" if run.state in ("running", "complete") else "bold reverse"),
                (f" · step {run.step_number}: {run.step_title}", ""),
                (overdue, "bold reverse"),
            )
        )
        steps = self.query_one("#steps", DataTable)
        keep = steps.cursor_row
        steps.clear()
        for s in run.steps:
            steps.add_row(str(s.number), s.title, STATUS_GLYPH.get(s.status, s.status))
        steps.move_cursor(row=keep if keep >= 0 else run.step_number - 1, animate=False)
        current = next((s for s in run.steps if s.status == "current"), None)
        title = self.query_one("#step-title", Static)
        if current is None:
            title.update(f"Run {run.state}: no current step.")
            for wid in ("#conditions", "#signatures"):
                self.query_one(wid, Static).update("")
        else:
            title.update(f"Step {current.number}: {current.title}")
            lines = Text("Conditions\n" if current.conditions else "")
            for text, ok, why in current.conditions:
                if ok:
                    lines.append(f" ✓ met      {text}\n")
                else:
                    lines.append(" ✗ NOT MET ", style="bold reverse")
                    lines.append(f" {text}: {why}\n")
            self.query_one("#conditions", Static).update(lines)
            sigs = "\n".join(f" {s}" for s in current.signatures)
            self.query_one("#signatures", Static).update(f"Signatures\n{sigs}" if sigs else "")
            key = (run.run_id, current.number)
            if self._fields_for != key:
                self._fields_for = key
                box = self.query_one("#fields", Vertical)
                box.remove_children()
                for f in current.fields:
                    label = f"{f.label} ({field_hint(f)})"
                    box.mount(Label(label, classes="field-hint"), field_widget(f))
        self.query_one("#choices", Static).update(self.choices_text(run))
        self.refresh_bindings()

    @staticmethod
    def choices_text(run: RunView) -> Text:
        out = Text("Allowed now\n")
        allowed = [c for c in run.choices if c.allowed]
        for c in allowed:
            out.append(f" ● {choice_text(c)}\n")
        if not allowed:
            out.append(" (nothing)\n")
        out.append("Not now\n")
        for c in run.choices:
            if not c.allowed:
                out.append(f" ○ {choice_text(c)}: {c.why}\n", style="dim")
        return out

    # -- selecting ----------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "procedures":
            self.action_start()
        elif event.data_table.id == "runs" and event.row_key.value is not None:
            self.open_run(str(event.row_key.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a step's field saves the step's data."""
        event.stop()
        self.action_save_data()

    def open_run(self, run_id: str) -> None:
        desk = self.api.procedures
        if desk is None:
            return
        self.run = desk.view(self.session, run_id)
        self._fields_for = None
        self.query_one("#steps", DataTable).move_cursor(row=self.run.step_number - 1)
        self.query_one("#proc-tabs", TabbedContent).active = "pane-run"
        self.show_run()
        self.query_one("#steps", DataTable).focus()

    def choice(self, action: str, target: str | None = None) -> Choice | None:
        if self.run is None:
            return None
        for c in self.run.choices:
            if c.action == action and (target is None or c.target == target):
                return c
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Greyed out (None) when the core says no; the reason is listed on the page."""
        if action == "start":
            tabs = self.query_one("#proc-tabs", TabbedContent)
            return True if tabs.active == "pane-procedures" else None
        if self.run is None:
            return None
        if action == "transition":
            c = self.choice(str(parameters[0]))
            return True if c is not None and c.allowed else None
        wanted = {
            "save_data": ("enter_data",),
            "sign": ("sign",),
            "complete": ("complete_step",),
            "command": COMMAND_KINDS,
        }.get(action)
        if wanted is None:
            if action == "witness":
                return True if any(c.action == "sign" for c in self.run.choices) else None
            return True
        return True if any(c.action in wanted and c.allowed for c in self.run.choices) else None

    # -- actions ------------------------------------------------------------------------------

    def _done(self, view: RunView) -> None:
        self.run = view
        self.refresh_runs()

    def action_start(self) -> None:
        desk = self.api.procedures
        table = self.query_one("#procedures", DataTable)
        if desk is None or table.row_count == 0:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        procedure_id = str(row_key.value)

        def started(view: RunView) -> None:
            self.refresh_runs()
            self.open_run(view.run_id)

        self.call_core(desk.start(self.session, self.origin, procedure_id), done=started)

    def action_save_data(self) -> None:
        desk, run = self.api.procedures, self.run
        current = next((s for s in run.steps if s.status == "current"), None) if run else None
        if desk is None or run is None or current is None:
            return
        entries: list[tuple[str, str]] = []
        for f in current.fields:
            widget = self.query_one(f"#f-{f.name}")
            if isinstance(widget, Select):
                value = "" if widget.value is Select.NULL else str(widget.value)
            else:
                value = widget.value.strip() if isinstance(widget, Input) else ""
            if value and value != (f.value or ""):
                entries.append((f.name, value))
        if not entries:
            self.notify("Nothing new to save: type or choose a value first.")
            return

        async def save() -> RunView:
            view = run
            for name, value in entries:
                view = await desk.enter_data(self.session, self.origin, run.run_id, name, value)
            return view

        def saved(view: RunView) -> None:
            self._done(view)
            self.notify("Data saved.")

        self.call_core(save(), done=saved)

    def _meaning(self, pick: Callable[[str], None], *, allowed_only: bool) -> None:
        meanings = [
            str(c.target)
            for c in (self.run.choices if self.run else ())
            if c.action == "sign" and (c.allowed or not allowed_only)
        ]
        if not meanings:
            self.notify("No signature is wanted for this step now.")
        elif len(meanings) == 1:
            pick(meanings[0])
        else:
            self.app.push_screen(
                ChoiceDialog("Which signature?", meanings),
                lambda m: pick(m) if m is not None else None,
            )

    def _sign_rows(self, meaning: str) -> list[tuple[str, str]]:
        run = self.run
        assert run is not None
        current = next((s for s in run.steps if s.status == "current"), None)
        data = ", ".join(
            f"{f.label}={f.value}" for f in (current.fields if current else ()) if f.value
        )
        rows = [
            ("Action", "procedure step"),
            ("Target", f"{run.title} / {run.run_id[:8]}"),
            ("Step", f"{run.step_number}: {run.step_title}"),
        ]
        if data:
            rows.append(("Data", data))
        return [*rows, ("Meaning", meaning)]

    def action_sign(self) -> None:
        desk = self.api.procedures
        if desk is None or self.run is None:
            return
        run_id = self.run.run_id

        def pick(meaning: str) -> None:
            def act(signature: Credentials, reason: str) -> Awaitable[RunView]:
                return desk.sign(self.session, self.origin, run_id, meaning, signature, reason)

            self._push_sign(self._sign_rows(meaning), act, ask_reason=True)

        self._meaning(pick, allowed_only=True)

    def action_witness(self) -> None:
        desk = self.api.procedures
        if desk is None or self.run is None:
            return
        run_id = self.run.run_id

        def pick(meaning: str) -> None:
            def act(witness: Credentials, reason: str) -> Awaitable[RunView]:
                return desk.witness(self.session, self.origin, run_id, meaning, witness, reason)

            rows = [*self._sign_rows(meaning), ("Signer", "a second person, at this terminal")]
            self._push_sign(rows, act, second=True, ask_reason=True)

        self._meaning(pick, allowed_only=False)

    def _push_sign(
        self,
        rows: list[tuple[str, str]],
        act: Callable[[Credentials, str], Awaitable[RunView]],
        *,
        second: bool = False,
        ask_reason: bool = False,
    ) -> None:
        def signed(view: RunView | None) -> None:
            if view is not None:
                self._done(view)

        self.app.push_screen(
            SignDialog(
                "Electronic signature",
                rows,
                act,
                needs_user_id=self.api.signing_needs_user_id(self.session),
                second=second,
                ask_reason=ask_reason,
            ),
            signed,
        )

    def action_complete(self) -> None:
        desk = self.api.procedures
        if desk is None or self.run is None:
            return
        self.call_core(
            desk.complete_step(self.session, self.origin, self.run.run_id), done=self._done
        )

    def action_transition(self, name: str) -> None:
        desk, run = self.api.procedures, self.run
        if desk is None or run is None:
            return
        title = TRANSITIONS[name]
        rows = [("Run", f"{run.title} / {run.run_id[:8]}"), ("State", run.state.upper())]

        def reasoned(answer: Reasoned | None) -> None:
            if answer is None:
                return
            meaning = "approved" if name == "abort" else "performed"
            sign_rows = [
                ("Action", title),
                ("Target", f"{run.title} / {run.run_id[:8]}"),
                ("Step", f"{run.step_number}: {run.step_title}"),
                ("Meaning", meaning),
                ("Reason", answer.reason),
            ]

            def act(signature: Credentials, _: str) -> Awaitable[RunView]:
                return desk.transition(
                    self.session, self.origin, run.run_id, name, answer.reason, signature
                )

            self._push_sign(sign_rows, act)

        self.app.push_screen(ReasonDialog(title, rows), reasoned)

    def action_command(self) -> None:
        run = self.run
        if run is None:
            return
        allowed = [c for c in run.choices if c.action in COMMAND_KINDS and c.allowed]
        if not allowed:
            self.notify("The current step has no command to give now.")
            return
        if len(allowed) == 1:
            self.give(allowed[0])
            return
        labels = [choice_text(c) for c in allowed]
        self.app.push_screen(
            ChoiceDialog("Which command of this step?", labels),
            lambda label: self.give(allowed[labels.index(label)]) if label else None,
        )

    def give(self, choice: Choice) -> None:
        run = self.run
        if run is None or choice.target is None:
            return
        if choice.action == "capture":
            capture_flow(self, choice.target, run.run_id, done=lambda _: self.refresh_runs())
            return
        info = next(
            (t for t in self.api.tag_definitions(self.session) if t.name == choice.target), None
        )
        if info is None:
            self.notify(f"{choice.target} is not a tag of this plant.")
            return
        change_tag(self, info, run.run_id, on_done=lambda _: self.refresh_runs())

    def action_report(self) -> None:
        """The run's record (electronic batch record) as a PDF in the plant's reports folder."""
        from hmi.ui.screens.report import write_report

        if self.run is None:
            self.notify("Open a run first (Runs tab).")
            return
        request = ReportRequest("run", "pdf", run_id=self.run.run_id)
        write_report(self, request, self.query_one("#report-note", Static), self.custos.tz)
