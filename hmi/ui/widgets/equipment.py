"""One equipment's tags as a table: value, units, quality and alarm state in words.

The table is built once from the tag definitions; a refresh only rewrites
cells whose text changed, so a few refreshes a second cost little.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from hmi.core.api_types import AlarmView, TagInfo, TagReading
from hmi.ui.format import quality_text, value_text

COLUMNS = ("Tag", "Value", "Units", "Quality", "Alarm", "Set", "Description")
WIDTHS = {"Value": 11, "Units": 5, "Alarm": 14}
"""Fixed widths for columns whose text changes, so the table does not jump."""
ALARM_STATES = {"UNACK_ACTIVE": "UNACK", "ACK_ACTIVE": "ACK", "RTN_UNACK": "RTN UNACK"}
PRIORITY_STYLE = {1: "bold red", 2: "bold dark_orange", 3: "bold yellow", 4: "bold cyan"}


def alarm_cell(alarm: AlarmView | None) -> Text:
    if alarm is None:
        return Text("")
    state = ALARM_STATES.get(alarm.state, alarm.state)
    return Text(f"{alarm.priority_label} {state}", style=PRIORITY_STYLE.get(alarm.priority, ""))


def quality_cell(reading: TagReading | None) -> Text:
    if reading is None:
        return Text("no data", style="bold")
    text = quality_text(reading.quality, reading.reason)
    return Text(text, style="" if reading.quality == "GOOD" else "bold magenta")


def set_cell(info: TagInfo) -> str:
    if not info.writable:
        return ""
    return "start/stop" if info.dtype == "bool" else "set"


class EquipmentPanel(DataTable[object]):
    """The tags of one piece of equipment; Enter on a writable row asks to change it."""

    def __init__(self, equipment: str, tags: Sequence[TagInfo], **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.equipment = equipment
        self.tags = {t.name: t for t in tags}
        self._shown: dict[tuple[str, str], str] = {}

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column, width=WIDTHS.get(column))
        for info in self.tags.values():
            short = info.name.removeprefix(f"{self.equipment}.")
            self.add_row(
                short, "----", info.units, "no data", "", set_cell(info), info.description,
                key=info.name,
            )  # fmt: skip

    def selected_tag(self) -> TagInfo | None:
        if not self.tags or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        return self.tags.get(key or "")

    def show(self, readings: Mapping[str, TagReading], alarms: Mapping[str, AlarmView]) -> None:
        for name, info in self.tags.items():
            reading = readings.get(name)
            value = value_text(reading.value if reading else None, info.dtype)
            self._put(name, "Value", Text(value, justify="right"), value)
            quality = quality_cell(reading)
            self._put(name, "Quality", quality, quality.plain)
            alarm = alarm_cell(alarms.get(name))
            self._put(name, "Alarm", alarm, alarm.plain)

    def _put(self, row: str, column: str, cell: Text, plain: str) -> None:
        if self._shown.get((row, column)) != plain:
            self._shown[(row, column)] = plain
            self.update_cell(row, column, cell, update_width=column not in WIDTHS)
