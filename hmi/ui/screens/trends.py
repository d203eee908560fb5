"""Trends: one or more tags over a chosen period, plotted in the terminal from tag history.

The person picks numeric tags and a period (the last 10 minutes, hour, 8 or 24
hours, or from/to in the terminal's local time); Ctrl+R reads the history again.
A process value is drawn with its setpoint when the plant pairs them by name
(``BR101.TEMP_PV`` with ``BR101.TEMP_SP``), and with its low and high limits as
lines. Each line is told apart by its marker and its legend as well as by
colour, so a monochrome terminal reads the same plot. The history is read
through the records desk in a worker (``call_core``), never on the UI's path;
the core downsamples it to the points asked for and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Select, SelectionList, Static
from textual_plotext import PlotextPlot

from hmi.core.api import TerminalAPI
from hmi.core.api_records import TrendSeries
from hmi.core.api_types import TagInfo
from hmi.core.errors import HmiError
from hmi.core.identity import Session
from hmi.ui.format import limits_text, value_text
from hmi.ui.screens.audit import parse_local
from hmi.ui.screens.base import PageScreen

NUMERIC = ("int", "uint", "float")
POINTS = 400
CUSTOM = "custom"
PERIODS: tuple[tuple[str, str], ...] = (
    ("Last 10 min", "600"),
    ("Last 1 h", "3600"),
    ("Last 8 h", "28800"),
    ("Last 24 h", "86400"),
    ("From / to", CUSTOM),
)
MAX_TAGS = 4
"""More lines than this on an 80-column plot are no longer readable."""

COLOURS = ("white", "cyan", "magenta", "green")
"""One per chosen tag; its setpoint and limits share the tag's colour and differ by marker."""


@dataclass(frozen=True)
class TrendLine:
    """One chosen tag with the setpoint paired to it, as fetched."""

    series: TrendSeries
    setpoint: TrendSeries | None


def numeric_tags(tags: Sequence[TagInfo]) -> list[TagInfo]:
    return [t for t in tags if t.dtype.startswith(NUMERIC)]


def paired_setpoint(tag: str, names: set[str]) -> str | None:
    """The setpoint drawn with a process value: ``X_PV`` pairs with ``X_SP`` when it exists."""
    if tag.endswith("_PV"):
        sp = tag[: -len("_PV")] + "_SP"
        if sp in names:
            return sp
    return None


def default_tag(tags: Sequence[TagInfo]) -> str | None:
    """What a trend opens on: the first process value with a setpoint, else the first one."""
    names = {t.name for t in tags}
    pvs = [t.name for t in tags if t.name.endswith("_PV")]
    return next((n for n in pvs if paired_setpoint(n, names)), pvs[0] if pvs else None)


async def fetch_trend(
    api: TerminalAPI,
    session: Session,
    tags: Sequence[str],
    names: set[str],
    start: datetime,
    end: datetime,
    points: int = POINTS,
) -> list[TrendLine]:
    """Each tag's history and its paired setpoint's (run in a worker by the screen)."""
    records = api.records
    if records is None:
        raise HmiError("This terminal keeps no records to draw a trend from.", title="Not shown")
    lines = []
    for tag in tags:
        series = await records.trend(session, tag, start, end, points)
        sp = paired_setpoint(tag, names)
        setpoint = None
        if sp is not None and sp not in tags:
            setpoint = await records.trend(session, sp, start, end, points)
        lines.append(TrendLine(series, setpoint))
    return lines


def time_ticks(
    start: datetime, end: datetime, tz: tzinfo | None, n: int = 5
) -> tuple[list[float], list[str]]:
    """``n`` ticks across the period, labelled in local time (with the date past 24 h)."""
    span = (end - start).total_seconds()
    fmt = "%H:%M" if span <= 86400 else "%m-%d %H:%M"
    if span <= 600:
        fmt = "%H:%M:%S"
    ticks = [start.timestamp() + span * i / (n - 1) for i in range(n)]
    labels = [(start + timedelta(seconds=span * i / (n - 1))).astimezone(tz).strftime(fmt)
              for i in range(n)]  # fmt: skip
    return ticks, labels


def summary_text(lines: Sequence[TrendLine]) -> str:
    """Under the plot: each tag's points, last value, limits, and what was averaged."""
    out = []
    for line in lines:
        s = line.series
        units = f" {s.units}" if s.units else ""
        if not s.points:
            out.append(f"{s.tag}: no recorded values in this period")
            continue
        averaged = ", averaged" if s.downsampled else ""
        count = f"{len(s.points)} point{'s' if len(s.points) != 1 else ''}"
        text = (
            f"{s.tag}: {count}{averaged}, last {value_text(s.points[-1][1])}{units};"
            f" limits {limits_text(s.low, s.high, s.units)}"
        )
        if line.setpoint is not None:
            sp = line.setpoint
            last = value_text(sp.points[-1][1]) if sp.points else "----"
            text += f"; setpoint {sp.tag} {last}{units}"
        out.append(text)
    return "\n".join(out) if out else "Choose one or more tags (Space), then Ctrl+R."


def draw(
    plot: PlotextPlot, lines: Sequence[TrendLine], start: datetime, end: datetime, tz: tzinfo | None
) -> None:
    """Draw the lines on the plot: the value, its setpoint, its limits."""
    plt = plot.plt
    plt.clear_data()
    plt.clear_figure()
    x0, x1 = start.timestamp(), end.timestamp()
    for i, line in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        s = line.series
        if s.points:
            xs = [ts.timestamp() for ts, _ in s.points]
            ys = [v for _, v in s.points]
            plt.plot(xs, ys, marker="braille", color=colour, label=s.tag)
        sp = line.setpoint
        if sp is not None and sp.points:
            xs = [ts.timestamp() for ts, _ in sp.points]
            ys = [v for _, v in sp.points]
            plt.plot(xs, ys, marker="•", color=colour, label=f"{sp.tag} (setpoint)")
        units = f" {s.units}" if s.units else ""
        if s.low is not None:
            plt.plot([x0, x1], [s.low, s.low], marker="-", color=colour,
                     label=f"low {value_text(float(s.low))}{units}")  # fmt: skip
        if s.high is not None:
            plt.plot([x0, x1], [s.high, s.high], marker="=", color=colour,
                     label=f"high {value_text(float(s.high))}{units}")  # fmt: skip
    plt.xlim(x0, x1)
    ticks, labels = time_ticks(start, end, tz)
    plt.xticks(ticks, labels)
    plot.refresh()


class TrendsScreen(PageScreen):
    page = "trends"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reload", "Refresh", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[TagInfo] = []
        self.generation = 0
        self.lines: list[TrendLine] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="trend-controls"):
            yield Select(PERIODS, value="600", allow_blank=False, compact=True, id="period")
            yield Input(placeholder="from: YYYY-MM-DD HH:MM", id="trend-from")
            yield Input(placeholder="to: YYYY-MM-DD HH:MM", id="trend-to")
        with Horizontal(id="trend-body"):
            yield SelectionList[str](id="trend-tags")
            yield PlotextPlot(id="trend-plot")
        yield Static("", id="trend-summary")

    def on_mount(self) -> None:
        self.tags = numeric_tags(self.api.tag_definitions(self.session))
        chooser = self.query_one("#trend-tags", SelectionList)
        first = default_tag(self.tags)
        for t in self.tags:
            chooser.add_option((t.name, t.name, t.name == first))
        self.query_one("#trend-summary", Static).update(summary_text([]))
        plot = self.query_one("#trend-plot", PlotextPlot)
        plot.plt.title("")
        chooser.focus()
        self.action_reload()

    # -- choosing ------------------------------------------------------------------------

    def period(self) -> tuple[datetime, datetime] | None:
        """The chosen period in UTC; None (after saying why) if from/to is not a date."""
        chosen = self.query_one("#period", Select).value
        now = self.custos.clock.now()
        if chosen != CUSTOM:
            return now - timedelta(seconds=int(str(chosen))), now
        tz = self.custos.tz
        try:
            start = parse_local(self.query_one("#trend-from", Input).value, tz)
            end = parse_local(self.query_one("#trend-to", Input).value, tz) or now
        except ValueError as exc:
            self.custos.show_refusal(HmiError(str(exc), title="Not a date"))
            return None
        if start is None:
            self.custos.show_refusal(
                HmiError("Enter the start of the period (from).", title="No period")
            )
            return None
        return start, end

    def chosen_tags(self) -> list[str]:
        return list(self.query_one("#trend-tags", SelectionList).selected)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value != CUSTOM:
            self.action_reload()
        else:
            self.query_one("#trend-from", Input).focus()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        self.action_reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_reload()

    # -- loading -------------------------------------------------------------------------

    def action_reload(self) -> None:
        tags = self.chosen_tags()
        summary = self.query_one("#trend-summary", Static)
        if not tags:
            self.lines = []
            draw(self.query_one("#trend-plot", PlotextPlot), [], *self._axis())
            summary.update(summary_text([]))
            return
        if len(tags) > MAX_TAGS:
            summary.update(f"Choose at most {MAX_TAGS} tags: {len(tags)} are chosen.")
            return
        period = self.period()
        if period is None:
            return
        start, end = period
        if end <= start:
            self.custos.show_refusal(
                HmiError("The period must end after it starts.", title="No period")
            )
            return
        self.generation += 1
        generation = self.generation
        summary.update("Reading the history…")
        names = {t.name for t in self.tags}

        def show(lines: list[TrendLine]) -> None:
            if generation != self.generation:
                return  # a newer request is on its way
            self.lines = lines
            draw(self.query_one("#trend-plot", PlotextPlot), lines, start, end, self.custos.tz)
            summary.update(summary_text(lines))

        self.call_core(fetch_trend(self.api, self.session, tags, names, start, end), done=show)

    def _axis(self) -> tuple[datetime, datetime, tzinfo | None]:
        now = self.custos.clock.now()
        return now - timedelta(minutes=10), now, self.custos.tz
