"""Password change: required at first login and when a password has expired.

The core decides whether a change is required (``Session.password_change_
required``) and whether the new password is acceptable; this screen only
collects the three masked fields and checks that the two new ones match.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from hmi.ui.screens.base import CustosScreen

FORCED = (
    "Your password must be changed before you can continue "
    "(a temporary password, or one that has expired)."
)


class PasswordScreen(CustosScreen):
    def __init__(self, *, forced: bool) -> None:
        super().__init__()
        self.forced = forced

    def compose_body(self) -> Iterable[Widget]:
        yield Vertical(
            Static("Change password", classes="dialog-title"),
            Static(FORCED if self.forced else ""),
            Label("Current password"),
            Input(id="old", password=True),
            Label("New password"),
            Input(id="new", password=True),
            Label("New password again"),
            Input(id="again", password=True),
            Button("Change password", id="change", variant="primary"),
            Static("", id="notice"),
            id="password-form",
        )

    def on_mount(self) -> None:
        self.query_one("#old", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        order = ["old", "new", "again"]
        i = order.index(event.input.id or "again")
        if i < len(order) - 1:
            self.query_one(f"#{order[i + 1]}", Input).focus()
        else:
            self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "change":
            self.submit()

    def submit(self) -> None:
        fields = {k: self.query_one(f"#{k}", Input) for k in ("old", "new", "again")}
        notice = self.query_one("#notice", Static)
        if fields["new"].value != fields["again"].value:
            notice.update("The two new passwords differ.")
            fields["again"].value = ""
            fields["again"].focus()
            return
        old, new = fields["old"].value, fields["new"].value
        for field in fields.values():
            field.value = ""
        fields["old"].focus()
        self.call_core(self.api.change_password(self.session, old, new), done=self.changed)

    def changed(self, _: object) -> None:
        self.app.notify("Password changed.", title="Password")
        self.custos.start_session(self.session)
