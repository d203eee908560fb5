"""A small form and a signature dialog for the desks' signed acts (accounts, configuration).

The setpoint path has its own signature dialog (``esign.py``), bound to a
command preview. Account and configuration acts are signed inside the core
from the fields given, so this dialog shows the same fields (action,
target, change, meaning, reason), asks for user ID and password, and calls
the desk. It always asks for the user ID: a full signature is accepted in
every signing mode (11.200(a)(1)). On a refusal the form stays, so the
person can correct it; the password never leaves the dialog except in the
call to the core.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.ui.screens.base import CustosDialog
from hmi.ui.screens.esign import STATEMENT, field

T = TypeVar("T")


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


class SignDialog(CustosDialog[T], Generic[T]):
    """Shows what is signed, takes user ID and password, and makes the signed call."""

    def __init__(
        self,
        rows: Sequence[tuple[str, str]],
        act: Callable[[Credentials], Awaitable[T]],
    ) -> None:
        super().__init__()
        self.rows = list(rows)
        self.act = act

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="esign"):
            yield Static("Electronic signature", classes="dialog-title")
            for label, text in self.rows:
                yield Horizontal(Label(label, classes="field-label"), Static(text), classes="field")
            yield Static(STATEMENT, id="statement")
            yield field("User ID", Input(id="user"))
            yield field("Password", Input(id="password", password=True))
            yield Static("", id="notice")
            with Horizontal(classes="buttons"):
                yield Button("Sign", id="sign", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#user", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "user":
            self.query_one("#password", Input).focus()
        else:
            self.sign()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "sign":
            self.sign()
        else:
            self.dismiss(None)

    def sign(self) -> None:
        user_id = self.query_one("#user", Input).value.strip() or None
        credentials = Credentials(self.query_one("#password", Input).value, user_id)
        self.query_one("#notice", Static).update("Signing…")
        self.query_one("#sign", Button).disabled = True
        self.call_core(self.act(credentials), done=self.dismiss, failed=self.refused)

    def refused(self, error: HmiError) -> None:
        self.query_one("#sign", Button).disabled = False
        self.query_one("#notice", Static).update(f"{error.title}: {error.message}")
