"""The alarms page: what is annunciated, and what is hidden from the plant and by whom.

The active list is sorted by priority (most urgent first, then newest) or by
time (newest first) with one key. Acknowledging needs no signature; shelving,
taking out of service and returning to service hide or show an alarm, so they
take a reason and the person's signature. Every action goes to the core,
which decides whether it is allowed and records it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from hmi.core.api_types import AlarmView
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.ui.format import local_time, value_text
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.esign import SignDialog
from hmi.ui.screens.forms import ReasonDialog, Reasoned
from hmi.ui.widgets.banner import priority_text

REFRESH_S = 1.0
SHELVE_MINUTES = 60.0
STATE_WORDS = {
    "UNACK_ACTIVE": "UNACK",
    "ACK_ACTIVE": "acked",
    "RTN_UNACK": "RTN UNACK",
    "SHELVED": "SHELVED",
    "SUPPRESSED": "SUPPRESSED",
    "OUT_OF_SERVICE": "OUT OF SERVICE",
}
WAITING = ("UNACK_ACTIVE", "RTN_UNACK")


def alarm_value(alarm: AlarmView) -> str:
    """The value that raised the alarm, as the overview shows values."""
    if alarm.value is None:
        return ""
    try:
        return value_text(float(alarm.value))
    except ValueError:
        return alarm.value


def state_text(alarm: AlarmView) -> str:
    return STATE_WORDS.get(alarm.state, alarm.state)


def priority_cell(alarm: AlarmView) -> Text:
    """Glyphs, number and word always; colour only on an unacknowledged alarm."""
    colours = {1: "#8b0000", 2: "#a85000", 3: "#8a7a00", 4: "#30506a"}
    if alarm.state not in WAITING:
        return Text(priority_text(alarm))
    return Text(
        priority_text(alarm), style=f"bold white on {colours.get(alarm.priority, 'grey37')}"
    )


class AlarmsScreen(PageScreen):
    page = "alarms"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "acknowledge", "Ack"),
        Binding("p", "acknowledge_page", "Ack page"),
        Binding("t", "sort", "Sort"),
        Binding("h", "toggle_hidden", "Active/Hidden"),
        Binding("s", "shelve", "Shelve"),
        Binding("o", "out_of_service", "Out of svc"),
        Binding("r", "return_to_service", "Return"),
    ]

    by_time = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="alarm-summary")
        with TabbedContent(id="alarm-tabs"):
            with TabPane("Active", id="pane-active"):
                yield DataTable(id="active", cursor_type="row", zebra_stripes=False)
            with TabPane("Hidden", id="pane-hidden"):
                yield DataTable(id="hidden", cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        active = self.query_one("#active", DataTable)
        active.add_columns("Priority", "Time", "State", "Alarm", "Value", "Tag")
        hidden = self.query_one("#hidden", DataTable)
        hidden.add_columns("Priority", "State", "Until", "Alarm", "By, why", "Tag")
        self.refresh_alarms()
        self.set_interval(REFRESH_S, self.refresh_alarms)
        active.focus()

    # -- what is shown ----------------------------------------------------------------------

    def sorted_active(self, alarms: list[AlarmView]) -> list[AlarmView]:
        """The core's order is by priority then newest; by time is newest first."""
        if not self.by_time:
            return alarms
        return sorted(
            alarms,
            key=lambda a: a.activated_at.timestamp() if a.activated_at else 0.0,
            reverse=True,
        )

    def refresh_alarms(self) -> None:
        desk = self.api.alarms
        if self.custos.session is None or desk is None:
            return
        try:
            active = self.sorted_active(desk.active(self.session))
            hidden = desk.hidden(self.session)
        except HmiError:
            return  # the session ended; the app is on its way back to login
        order = "time (newest first)" if self.by_time else "priority, then newest"
        waiting = sum(1 for a in active if a.state in WAITING)
        self.query_one("#alarm-summary", Static).update(
            f"Active {len(active)} · unacknowledged {waiting} · hidden {len(hidden)}"
            f" · sorted by {order}"
        )
        self._fill(self.query_one("#active", DataTable), active, self._active_row)
        self._fill(self.query_one("#hidden", DataTable), hidden, self._hidden_row)

    def _time(self, alarm: AlarmView) -> str:
        return local_time(alarm.activated_at, self.custos.tz)[11:19] if alarm.activated_at else ""

    def _active_row(self, a: AlarmView) -> tuple[object, ...]:
        return (priority_cell(a), self._time(a), state_text(a), a.message, alarm_value(a), a.tag)

    def _hidden_row(self, a: AlarmView) -> tuple[object, ...]:
        until = local_time(a.shelved_until, self.custos.tz)[11:16] if a.shelved_until else ""
        return (priority_text(a), state_text(a), until, a.message, a.hidden_by or "", a.tag)

    def _fill(
        self,
        table: DataTable[object],
        alarms: list[AlarmView],
        row: Callable[[AlarmView], tuple[object, ...]],
    ) -> None:
        """Rebuild the rows, keeping the cursor on the same alarm."""
        keep = self._selected_id(table)
        table.clear()
        for alarm in alarms:
            table.add_row(*row(alarm), key=alarm.alarm_id)
        ids = [a.alarm_id for a in alarms]
        if keep in ids:
            table.move_cursor(row=ids.index(keep), animate=False)

    @staticmethod
    def _selected_id(table: DataTable[object]) -> str | None:
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def selected(self, hidden: bool = False) -> AlarmView | None:
        desk = self.api.alarms
        table = self.query_one("#hidden" if hidden else "#active", DataTable)
        alarm_id = self._selected_id(table)
        if desk is None or alarm_id is None:
            return None
        alarms = desk.hidden(self.session) if hidden else desk.active(self.session)
        return next((a for a in alarms if a.alarm_id == alarm_id), None)

    def _showing_hidden(self) -> bool:
        return self.query_one("#alarm-tabs", TabbedContent).active == "pane-hidden"

    # -- actions ----------------------------------------------------------------------------

    def action_toggle_hidden(self) -> None:
        tabs = self.query_one("#alarm-tabs", TabbedContent)
        tabs.active = "pane-active" if self._showing_hidden() else "pane-hidden"
        self.query_one("#hidden" if self._showing_hidden() else "#active", DataTable).focus()

    def action_sort(self) -> None:
        self.by_time = not self.by_time
        self.refresh_alarms()

    def action_acknowledge(self) -> None:
        alarm = self.selected()
        desk = self.api.alarms
        if alarm is None or desk is None or self._showing_hidden():
            self.notify("Select an active alarm first.")
            return
        self.call_core(
            desk.acknowledge(self.session, self.origin, alarm.alarm_id),
            done=lambda _: self.refresh_alarms(),
        )

    def action_acknowledge_page(self) -> None:
        desk = self.api.alarms
        if desk is None:
            return
        shown = [a.alarm_id for a in desk.active(self.session) if a.state in WAITING]
        if not shown:
            self.notify("No alarm on this page waits for acknowledgement.")
            return

        def done(count: int) -> None:
            self.notify(f"{count} alarm(s) acknowledged.")
            self.refresh_alarms()

        self.call_core(desk.acknowledge_page(self.session, self.origin, shown), done=done)

    def action_shelve(self) -> None:
        self._hide("Shelve alarm", "shelve", hidden=False, minutes=SHELVE_MINUTES)

    def action_out_of_service(self) -> None:
        self._hide("Take alarm out of service", "out_of_service", hidden=False)

    def action_return_to_service(self) -> None:
        self._hide("Return alarm to service", "return_to_service", hidden=True)

    def _hide(self, title: str, action: str, *, hidden: bool, minutes: float | None = None) -> None:
        desk = self.api.alarms
        alarm = self.selected(hidden=hidden) if self._showing_hidden() == hidden else None
        if desk is None or alarm is None:
            where = "the Hidden tab" if hidden else "the Active tab"
            self.notify(f"Select an alarm on {where} first.")
            return
        rows = [
            ("Alarm", f"{priority_text(alarm)} {alarm.message}"),
            ("Tag", alarm.tag),
            ("State", state_text(alarm)),
        ]

        def reasoned(answer: Reasoned | None) -> None:
            if answer is None:
                return
            sign_rows = [("Action", title), ("Alarm", f"{alarm.message} ({alarm.tag})")]
            if answer.minutes is not None:
                sign_rows.append(("Duration", f"{answer.minutes:g} min"))
            sign_rows += [("Meaning", "performed"), ("Reason", answer.reason)]

            def act(signature: Credentials, _: str) -> Awaitable[AlarmView]:
                s, o, i, why = self.session, self.origin, alarm.alarm_id, answer.reason
                if action == "shelve":
                    assert answer.minutes is not None
                    return desk.shelve(s, o, i, why, answer.minutes, signature)
                if action == "out_of_service":
                    return desk.remove_from_service(s, o, i, why, signature)
                return desk.return_to_service(s, o, i, why, signature)

            def signed(view: AlarmView | None) -> None:
                if view is not None:
                    self.notify(f"{view.message}: {state_text(view)}.")
                    self.refresh_alarms()

            self.app.push_screen(
                SignDialog(
                    "Electronic signature",
                    sign_rows,
                    act,
                    needs_user_id=self.api.signing_needs_user_id(self.session),
                ),
                signed,
            )

        self.app.push_screen(ReasonDialog(title, rows, minutes=minutes), reasoned)
