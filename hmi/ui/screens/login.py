"""Login: user ID and masked password; nothing of the plant is shown before it.

A failed login shows the core's message as it is: the same text whether the
user ID exists, the password is wrong or the account is locked, so the
screen reveals nothing about accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from hmi.core.errors import HmiError
from hmi.core.identity import Session
from hmi.ui.screens.base import CustosScreen


class LoginScreen(CustosScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "enter", "Log in", show=False, priority=True)
    ]

    def __init__(self, notice: str = "") -> None:
        super().__init__()
        self.notice = notice

    def compose_body(self) -> Iterable[Widget]:
        app = self.custos
        yield Vertical(
            Static(f"{app.plant_name}", classes="dialog-title"),
            Static(f"Terminal {app.origin.terminal_id}: log in to continue."),
            Label("User ID"),
            Input(id="user", placeholder="user ID"),
            Label("Password"),
            Input(id="password", password=True, placeholder="password"),
            Button("Log in", id="login", variant="primary"),
            Static(self.notice, id="notice"),
            id="login-form",
        )

    def on_mount(self) -> None:
        self.query_one("#user", Input).focus()

    def action_enter(self) -> None:
        """Enter in the user ID moves to the password at once, within the key's own handling.

        Keys can arrive in one batch (a browser terminal's websocket, a paste, a
        fast typist on a slow link). ``Input.focus()`` only schedules the move,
        after the batch, so the password would land in the user ID field, in
        clear; ``set_focus`` moves it now. Likewise the fields take their keys
        in their own queues, after this priority binding has run: submitting
        from the password field's queue sees every key typed before Enter.
        """
        focused = self.focused
        password = self.query_one("#password", Input)
        if isinstance(focused, Input) and focused.id == "user":
            self.set_focus(password)
        else:
            password.call_later(self.query_one("#user", Input).call_later, self.submit)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "login":
            self.submit()

    def submit(self) -> None:
        user = self.query_one("#user", Input).value.strip()
        password = self.query_one("#password", Input)
        if not user or not password.value:
            self.query_one("#notice", Static).update("Enter your user ID and password.")
            return
        secret = password.value
        password.value = ""
        self.query_one("#login", Button).disabled = True
        self.query_one("#notice", Static).update("Checking…")
        self.call_core(
            self.api.login(user, secret, self.origin), done=self.logged_in, failed=self.refused
        )

    def logged_in(self, session: Session) -> None:
        self.custos.start_session(session)

    def refused(self, error: HmiError) -> None:
        self.query_one("#login", Button).disabled = False
        self.query_one("#notice", Static).update(error.message)
        self.query_one("#password", Input).focus()
