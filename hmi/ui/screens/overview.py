"""The overview: one panel per equipment with every tag's value, quality and alarm state.

Values come from ``api.read_tags`` a few times a second (the tag table is in
memory; the call is cheap and never waits). Enter on a writable tag opens the
setpoint dialog, or start/stop for equipment commands.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, TabbedContent, TabPane

from hmi.core.api_types import AlarmView, TagInfo
from hmi.core.errors import HmiError
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.write import change_tag
from hmi.ui.widgets.equipment import EquipmentPanel

REFRESH_S = 0.3


def by_equipment(tags: list[TagInfo]) -> dict[str, list[TagInfo]]:
    groups: dict[str, list[TagInfo]] = {}
    for tag in tags:
        groups.setdefault(tag.equipment or tag.device or "Other", []).append(tag)
    return dict(sorted(groups.items()))


class OverviewScreen(PageScreen):
    page = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "change", "Change value", show=True, priority=False)
    ]

    def compose_body(self) -> ComposeResult:
        groups = by_equipment(self.api.tag_definitions(self.session))
        with TabbedContent(id="equipment"):
            for equipment, tags in groups.items():
                with TabPane(equipment, id=f"pane-{equipment}"):
                    yield EquipmentPanel(equipment, tags, id=f"panel-{equipment}")

    def on_mount(self) -> None:
        self.refresh_values()
        self.set_interval(REFRESH_S, self.refresh_values)
        panel = self._current_panel()
        if panel is not None:
            panel.focus()

    def refresh_values(self) -> None:
        if self.custos.session is None:
            return
        try:
            readings = {r.tag: r for r in self.api.read_tags(self.session)}
            alarms = self._alarms_by_tag()
        except HmiError:
            return  # the session ended; the app is on its way back to login
        for panel in self.query(EquipmentPanel):
            panel.show(readings, alarms)

    def _alarms_by_tag(self) -> dict[str, AlarmView]:
        out: dict[str, AlarmView] = {}
        if self.api.alarms is None:
            return out
        for alarm in self.api.alarms.active(self.session):
            known = out.get(alarm.tag)
            if known is None or alarm.priority < known.priority:
                out[alarm.tag] = alarm
        return out

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_change()

    def action_change(self) -> None:
        panel = self._current_panel()
        info = panel.selected_tag() if panel is not None else None
        if info is None:
            return
        if not info.writable:
            self.notify(f"{info.name} is a reading; it cannot be changed here.")
            return
        change_tag(self, info)

    def _current_panel(self) -> EquipmentPanel | None:
        focused = self.focused
        if isinstance(focused, EquipmentPanel):
            return focused
        tabs = self.query_one(TabbedContent)
        pane = tabs.active_pane
        return pane.query_one(EquipmentPanel) if pane is not None else None
