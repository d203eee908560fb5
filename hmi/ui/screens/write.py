"""Changing a tag: the setpoint (or start/stop) dialog, then the signature, then the outcome.

Each dialog talks to the core itself and closes only on success, so a
refusal is shown over the dialog and the person can correct the entry:
the setpoint dialog asks for ``preview_write`` (the core checks limits,
permissions, the sequence and the terminal, and returns exactly what is to
be signed); the signature dialog sends ``request_write`` with the digest of
what it showed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from hmi.core.api_types import CommandOutcome, SigningPreview, TagInfo, TagReading
from hmi.core.errors import HmiError
from hmi.core.tags import TagScalar
from hmi.ui.format import limits_text, parse_value, quality_text, value_text
from hmi.ui.screens.base import CustosDialog, CustosForm
from hmi.ui.screens.esign import ESignDialog, WriteIntent, field
from hmi.ui.screens.message import MessageDialog


@dataclass(frozen=True)
class Prepared:
    intent: WriteIntent
    preview: SigningPreview


def change_tag(
    screen: Screen[Any],
    info: TagInfo,
    run_id: str | None = None,
    on_done: Callable[[CommandOutcome], object] | None = None,
) -> None:
    """Open the right dialog for ``info``; the chain ends with the outcome shown.

    ``run_id``: the write is a command of that procedure run's current step."""
    dialog: CustosDialog[Prepared] = (
        OperateDialog(info, run_id) if info.dtype == "bool" else SetpointDialog(info, run_id)
    )

    def signed(outcome: CommandOutcome | None) -> None:
        if outcome is not None:
            screen.app.push_screen(outcome_dialog(outcome, info.units))
            if on_done is not None:
                on_done(outcome)

    def prepared(ready: Prepared | None) -> None:
        if ready is not None:
            screen.app.push_screen(ESignDialog(ready.intent, ready.preview), signed)

    screen.app.push_screen(dialog, prepared)


def outcome_dialog(outcome: CommandOutcome, units: str) -> MessageDialog:
    old, new = value_text(outcome.old_value), value_text(outcome.new_value)
    lines = [f"{outcome.tag}: {old} → {new} {units}".rstrip()]
    if outcome.outcome == "pending":
        title = "Sent for approval"
        lines.append(
            f"Request {outcome.approval_id}: the value is written once a second person approves it."
        )
    else:
        title = "Done"
        lines.append(f"Read back: {value_text(outcome.read_back)} {units}".rstrip())
    lines += [f"Signed: {s}" for s in outcome.signatures]
    return MessageDialog(title, "\n".join(lines), kind="outcome")


class _WriteDialog(CustosDialog[Prepared]):
    """Shared by the setpoint and start/stop dialogs: current state, reason, preview."""

    kind = "write_setpoint"

    def __init__(self, info: TagInfo, run_id: str | None = None) -> None:
        super().__init__()
        self.info = info
        self.run_id = run_id

    def current(self) -> TagReading | None:
        readings = self.api.read_tags(self.session, [self.info.name])
        return readings[0] if readings else None

    def describe(self) -> ComposeResult:
        info, reading = self.info, self.current()
        yield Static(f"{info.name}  {info.description}".rstrip(), classes="dialog-title")
        now = value_text(reading.value if reading else None, info.dtype)
        quality = quality_text(reading.quality, reading.reason) if reading else "no data"
        yield Static(f"Current: {now} {info.units}  ({quality})")
        if info.dtype != "bool":
            yield Static(f"Limits: {limits_text(info.low, info.high, info.units)}")

    def reason_field(self) -> ComposeResult:
        yield field("Reason", Input(id="reason", placeholder="why (recorded with the signature)"))
        yield Static("", id="notice")

    def ask(self, value: TagScalar) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        intent = WriteIntent(self.info.name, value, reason, self.kind, self.run_id)
        self.query_one("#notice", Static).update("Checking…")
        self.call_core(
            self.api.preview_write(
                self.session,
                self.origin,
                intent.tag,
                intent.value,
                reason,
                kind=intent.kind,
                run_id=intent.run_id,
            ),
            done=lambda preview: self.dismiss(Prepared(intent, preview)),
            failed=self.refused,
        )

    def refused(self, error: HmiError) -> None:
        self.query_one("#notice", Static).update(error.message)


class SetpointDialog(_WriteDialog, CustosForm[Prepared]):
    kind = "write_setpoint"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield from self.describe()
            units = f" ({self.info.units})" if self.info.units else ""
            yield field(f"New value{units}", Input(id="value", placeholder="new value"))
            yield from self.reason_field()
            with Horizontal(classes="buttons"):
                yield Button("Continue to signature", id="go", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#value", Input).focus()

    def submit(self) -> None:
        try:
            value = parse_value(self.query_one("#value", Input).value, self.info.dtype)
        except ValueError as exc:
            self.query_one("#notice", Static).update(str(exc))
            return
        self.ask(value)


class OperateDialog(_WriteDialog):
    """Start or stop equipment (a bool command tag): signed like any other command."""

    kind = "operate_equipment"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield from self.describe()
            yield from self.reason_field()
            with Horizontal(classes="buttons"):
                yield Button("Start (ON)", id="on", variant="primary")
                yield Button("Stop (OFF)", id="off")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id in ("on", "off"):
            self.ask(event.button.id == "on")
        else:
            self.dismiss(None)
