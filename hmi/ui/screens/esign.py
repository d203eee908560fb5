"""The electronic signature dialog (21 CFR 11.50, 11.200).

It shows exactly ``SigningPreview.request``, the content the core will bind
the signature to, and sends back the preview's digest with the request: if
what would be signed has changed meanwhile, the core refuses instead of
signing something the person did not see. The password is masked and never
leaves this dialog except in the request to the core.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from hmi.core.api_types import CommandOutcome, SetpointRequest, SigningPreview
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.core.tags import TagScalar
from hmi.ui.screens.base import CustosDialog

STATEMENT = (
    "Your electronic signature is the legally binding equivalent of your handwritten signature."
)


@dataclass(frozen=True)
class WriteIntent:
    """What the person asked for, kept to send the same request after signing."""

    tag: str
    value: TagScalar
    reason: str
    kind: str
    run_id: str | None = None
    """The procedure run the write belongs to (its current step's command)."""


def signed_lines(preview: SigningPreview) -> list[tuple[str, str]]:
    """The request as (label, text) rows, in the order a person reads a command."""
    r = preview.request
    rows = [("Action", r.action.replace("_", " ")), ("Target", r.target)]
    if r.old_value is not None or r.new_value is not None:
        change = f"{r.old_value if r.old_value is not None else '----'} → {r.new_value}"
        rows.append(("Change", f"{change} {r.units or ''}".rstrip()))
    if r.step:
        rows.append(("Step", r.step))
    rows += [("Meaning", r.meaning), ("Reason", r.reason or "(none given)")]
    return rows


class MarkedRadio(RadioButton):
    """A radio button whose choice reads without colour: ● when chosen, blank when not."""

    def render(self) -> Content:
        self.BUTTON_INNER = "●" if self.value else " "
        return super().render()


def field(label: str, widget: Input) -> Horizontal:
    """A label and its input on one line, so the dialog fits a 24-line terminal."""
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")


class ESignDialog(CustosDialog[CommandOutcome]):
    def __init__(self, intent: WriteIntent, preview: SigningPreview) -> None:
        super().__init__()
        self.intent = intent
        self.preview = preview

    @property
    def double(self) -> bool:
        return self.preview.esign == "double"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="esign"):
            yield Static("Electronic signature", classes="dialog-title")
            for label, text in signed_lines(self.preview):
                yield Horizontal(Label(label, classes="field-label"), Static(text), classes="field")
            yield Static(STATEMENT, id="statement")
            if self.preview.needs_user_id:
                yield field("User ID", Input(id="user", placeholder="your user ID"))
            yield field(
                "Password", Input(id="password", password=True, placeholder="your password")
            )
            if self.double:
                yield Static("A second person must sign this.", classes="note")
                with RadioSet(id="second"):
                    yield MarkedRadio("Witness here", id="witness-here", value=True)
                    yield MarkedRadio("Send for approval", id="approval")
                with Vertical(id="witness"):
                    yield field(
                        "Witness ID", Input(id="witness-user", placeholder="witness user ID")
                    )
                    yield field(
                        "Witness pw",
                        Input(id="witness-password", password=True, placeholder="witness password"),
                    )
            yield Static("", id="notice")
            with Horizontal(classes="buttons"):
                yield Button("Sign", id="sign", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        first = "#user" if self.preview.needs_user_id else "#password"
        self.query_one(first, Input).focus()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.query_one("#witness").display = event.pressed.id == "witness-here"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = [i for i in self.query(Input) if i.display and i.parent and i.parent.display]
        if event.input is inputs[-1] or (event.input.id == "password" and not self._witness_here()):
            self.sign()
        else:
            inputs[inputs.index(event.input) + 1].focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "sign":
            self.sign()
        else:
            self.dismiss(None)

    def _witness_here(self) -> bool:
        return self.double and self.query_one("#witness-here", RadioButton).value

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    def sign(self) -> None:
        user_id = self._value("#user").strip() if self.preview.needs_user_id else None
        signature = Credentials(self._value("#password"), user_id)
        witness = None
        if self._witness_here():
            witness = Credentials(
                self._value("#witness-password"), self._value("#witness-user").strip()
            )
        request = SetpointRequest(
            self.intent.tag,
            self.intent.value,
            self.intent.reason,
            signature,
            witness,
            kind=self.intent.kind,
            run_id=self.intent.run_id,
            shown=self.preview.digest,
        )
        self.query_one("#notice", Static).update("Signing…")
        self.query_one("#sign", Button).disabled = True
        self.call_core(
            self.api.request_write(self.session, self.origin, request),
            done=self.dismiss,
            failed=self.refused,
        )

    def refused(self, error: HmiError) -> None:
        """The form stays as it was, so the person can correct what was wrong."""
        self.query_one("#sign", Button).disabled = False
        self.query_one("#notice", Static).update(f"{error.title}: {error.message}")


SignAct = Callable[[Credentials, str], Awaitable[Any]]


class SignDialog(CustosDialog[Any]):
    """The e-sign dialog for an action other than a tag write (alarm, procedure, approval).

    ``rows`` say exactly what is signed, with the meaning; ``act(credentials, reason)``
    is the core call the signature goes with (``ask_reason``: the reason is asked here).
    The dialog closes with its result only on success; a refusal is shown in the dialog
    (and as the core's dialog), the form kept as it was.
    ``second`` asks for another person's user ID and password instead (a witness, or a
    supervisor deciding at a terminal where someone else is logged in).
    """

    def __init__(
        self,
        title: str,
        rows: list[tuple[str, str]],
        act: SignAct,
        *,
        needs_user_id: bool = True,
        second: bool = False,
        ask_reason: bool = False,
    ) -> None:
        super().__init__()
        self.ask_reason = ask_reason
        self.title_text = title
        self.rows = rows
        self.act = act
        self.needs_user_id = needs_user_id or second
        self.second = second

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="esign"):
            yield Static(self.title_text, classes="dialog-title")
            for label, text in self.rows:
                yield Horizontal(Label(label, classes="field-label"), Static(text), classes="field")
            if self.ask_reason:
                yield field("Reason", Input(id="reason"))
            yield Static(STATEMENT, id="statement")
            who = "Signer ID" if self.second else "User ID"
            if self.needs_user_id:
                yield field(who, Input(id="user"))
            yield field("Password", Input(id="password", password=True))
            yield Static("", id="notice")
            with Horizontal(classes="buttons"):
                yield Button("Sign", id="sign", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        first = "#reason" if self.ask_reason else "#user" if self.needs_user_id else "#password"
        self.query_one(first, Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "password":
            self.sign()
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "sign":
            self.sign()
        else:
            self.dismiss(None)

    def sign(self) -> None:
        user_id = self.query_one("#user", Input).value.strip() if self.needs_user_id else None
        credentials = Credentials(self.query_one("#password", Input).value, user_id)
        reason = self.query_one("#reason", Input).value.strip() if self.ask_reason else ""
        self.query_one("#notice", Static).update("Signing…")
        self.query_one("#sign", Button).disabled = True
        self.call_core(self.act(credentials, reason), done=self.dismiss, failed=self.refused)

    def refused(self, error: HmiError) -> None:
        self.query_one("#sign", Button).disabled = False
        self.query_one("#notice", Static).update(f"{error.title}: {error.message}")
