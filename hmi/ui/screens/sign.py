"""A small form for the desks' signed acts (accounts, configuration).

The fields are gathered here; the signature itself is taken by the shared
``esign.SignDialog``, which shows what is signed and always accepts a full
signature (11.200(a)(1)). On a refusal the form stays, so the person can
correct it.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from hmi.ui.screens.base import CustosDialog
from hmi.ui.screens.esign import field


class FormDialog(CustosDialog[dict[str, str]]):
    """Labelled inputs; OK answers with their values by ID, if none is left empty."""

    def __init__(self, title: str, fields: Sequence[tuple[str, str, str]]) -> None:
        """``fields``: (input ID, label, initial value)."""
        super().__init__()
        self.title_text = title
        self.fields = list(fields)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="form"):
            yield Static(self.title_text, classes="dialog-title")
            for key, label, value in self.fields:
                yield field(label, Input(value, id=key))
            yield Static("", id="notice")
            with Horizontal(classes="buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self.ok()
        else:
            inputs[inputs.index(event.input) + 1].focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.ok()
        else:
            self.dismiss(None)

    def ok(self) -> None:
        values = {key: self.query_one(f"#{key}", Input).value.strip() for key, _, _ in self.fields}
        empty = [label for key, label, _ in self.fields if not values[key]]
        if empty:
            self.query_one("#notice", Static).update(f"Please fill in: {', '.join(empty)}.")
            return
        self.dismiss(values)
