"""The dialog that shows a refusal or failure as the core words it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Button, Static

from hmi.ui.screens.base import CustosDialog


class MessageDialog(CustosDialog[None]):
    """Title and message exactly as given; Enter or Escape closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "cancel", "Close")]

    def __init__(self, title: str, message: str, *, kind: str = "refusal") -> None:
        super().__init__(classes=kind)
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="message"):
            yield Static(self.title_text, id="message-title", classes="dialog-title")
            yield Static(self.message, id="message-text")
            yield Button("OK", id="ok")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
