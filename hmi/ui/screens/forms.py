"""Small forms that come before a signature: a reason (and a duration), or a choice.

They check only what a person typed (present, a number); whether the action is
allowed is the core's decision, made when the signed request reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, OptionList, Static

from hmi.ui.screens.base import CustosDialog, CustosForm


@dataclass(frozen=True)
class Reasoned:
    reason: str
    minutes: float | None = None


class ReasonDialog(CustosForm[Reasoned]):
    """What the action is about, a reason, and a duration in minutes if ``minutes`` is given."""

    def __init__(
        self, title: str, rows: list[tuple[str, str]], *, minutes: float | None = None
    ) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows
        self.minutes = minutes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            for label, text in self.rows:
                yield Horizontal(Label(label, classes="field-label"), Static(text), classes="field")
            if self.minutes is not None:
                yield Label("Duration (minutes)")
                yield Input(f"{self.minutes:g}", id="minutes")
            yield Label("Reason")
            yield Input(id="reason", placeholder="why (recorded with the signature)")
            yield Static("", id="notice")
            with Horizontal(classes="buttons"):
                yield Button("Continue to signature", id="go", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#minutes" if self.minutes is not None else "#reason", Input).focus()

    def submit(self) -> None:
        notice = self.query_one("#notice", Static)
        reason = self.query_one("#reason", Input).value.strip()
        minutes = None
        if self.minutes is not None:
            text = self.query_one("#minutes", Input).value.strip()
            try:
                minutes = float(text)
            except ValueError:
                notice.update(f"{text!r} is not a number of minutes.")
                return
            if minutes <= 0:
                notice.update("Give a duration of more than 0 minutes.")
                return
        if not reason:
            notice.update("Give a reason: it is recorded with the signature.")
            return
        self.dismiss(Reasoned(reason, minutes))


class ChoiceDialog(CustosDialog[str]):
    """Pick one of a few options (Enter); Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield OptionList(*self.options, id="choices")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.options[event.option_index])
