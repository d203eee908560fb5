"""Trends, alarm history and security events on the running plant: the history plotted with
its setpoint and limits, an alarm's journal rows, a failed login in the security events."""

from __future__ import annotations

import asyncio

import pytest
from custos_testkit import ADMIN_PASSWORD
from textual.widgets import DataTable, Input, OptionList, SelectionList, Static
from textual_plotext import PlotextPlot
from ui_kit import CONSOLE, Plant, login, plant_fixture, until, wait_for  # noqa: F401

from hmi.core.errors import HmiError
from hmi.ui.app import CustosApp
from hmi.ui.screens.alarm_history import AlarmHistoryScreen
from hmi.ui.screens.events import EventsScreen
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.pages import PagesDialog
from hmi.ui.screens.trends import TrendsScreen

pytestmark = pytest.mark.timeout(120)


def static(app: CustosApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_page(
    pilot, app: CustosApp, user: str, key: str, screen: type, password: str | None = None
) -> None:
    await (login(pilot, user) if password is None else login(pilot, user, password))
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    if key.startswith("page:"):  # a page without a key: F1, then choose it in the list
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, PagesDialog), "page list")
        pages = app.screen.query_one(OptionList)
        ids = [pages.get_option_at_index(i).id for i in range(pages.option_count)]
        pages.highlighted = ids.index(key.removeprefix("page:"))
        await pilot.press("enter")
    else:
        await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, screen), screen.__name__)


async def flush_history(plant: Plant) -> None:
    history = plant.runtime.history
    assert history is not None
    assert await asyncio.to_thread(history.flush)


async def test_trend_of_the_vessel_temperature_shows_points_setpoint_and_limits(
    plant: Plant,
) -> None:
    plant.plc.step(60.0)
    await asyncio.sleep(1.0)  # the runtime polls the changed value
    await flush_history(plant)
    app = plant.app()
    async with app.run_test(size=(120, 32)) as pilot:
        await open_page(pilot, app, "op1", "f6", TrendsScreen)
        screen = app.screen
        assert isinstance(screen, TrendsScreen)
        chooser = screen.query_one("#trend-tags", SelectionList)
        assert chooser.selected == ["BR101.AGIT_PV"]  # the first value with a setpoint
        chooser.deselect_all()
        chooser.select("BR101.TEMP_PV")
        await wait_for(pilot, lambda: "BR101.TEMP_PV: " in static(app, "#trend-summary"), "temp")
        await wait_for(pilot, lambda: " points" in static(app, "#trend-summary"), "points")
        summary = static(app, "#trend-summary")
        assert summary.startswith("BR101.TEMP_PV: ")
        assert "setpoint BR101.TEMP_SP" in summary and "limits " in summary
        line = screen.lines[0]
        assert line.series.points and line.setpoint is not None and line.setpoint.points
        plotted = str(screen.query_one("#trend-plot", PlotextPlot).render())
        assert "BR101.TEMP_SP (setpoint)" in plotted and "high " in plotted

        # Ctrl+R reads again: later values arrive.
        before = len(line.series.points)
        plant.plc.step(60.0)
        await asyncio.sleep(1.0)
        await flush_history(plant)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(screen.lines[0].series.points) > before, "newer points")


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_alarm_history_shows_the_heater_fault_activation(plant: Plant) -> None:
    plant.plc.set("HEATER_FAULT", True)
    await until(
        lambda: (
            plant.query("SELECT count(*) FROM alarm_journal WHERE tag = 'BR101.HEATER_FAULT'")[0][0]
            > 0
        ),
        what="heater fault journalled",
    )
    app = plant.app()
    async with app.run_test(size=(140, 36)) as pilot:
        await open_page(pilot, app, "sup1", "page:alarm-history", AlarmHistoryScreen)
        table = app.screen.query_one("#history-rows", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, "journal rows")
        app.screen.query_one("#history-subject", Input).value = "BR101.HEATER_FAULT"
        await pilot.press("ctrl+r")
        await wait_for(
            pilot,
            lambda: table.row_count > 0 and all("HEATER_FAULT" in row[1] for row in cells(table)),
            "only the heater fault",
        )
        rows = cells(table)
        activation = rows[-1]  # newest first: the activation is the oldest row
        assert "Jacket heater fault" in activation[5]
        assert "→" in activation[3] and activation[0].endswith("+0000")
        assert "journal rows, newest first" in static(app, "#history-status")


async def test_alarm_history_is_not_offered_to_an_operator(plant: Plant) -> None:
    app = plant.app()
    async with app.run_test(size=(120, 32)) as pilot:
        await login(pilot, "op1")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        assert app.check_action("go", ("alarm-history",)) is False
        assert app.check_action("go", ("events",)) is False
        await pilot.press("f1")  # the page list offers only what the role may open
        await wait_for(pilot, lambda: isinstance(app.screen, PagesDialog), "page list")
        pages = app.screen.query_one(OptionList)
        ids = {pages.get_option_at_index(i).id for i in range(pages.option_count)}
        assert ids == {"overview", "alarms", "procedures", "trends", "camera"}


async def test_events_page_shows_a_failed_login(plant: Plant) -> None:
    api = plant.runtime.api
    assert api is not None
    with pytest.raises(HmiError):
        await api.login("op1", "not the password", CONSOLE)
    app = plant.app()
    async with app.run_test(size=(140, 36)) as pilot:
        await open_page(pilot, app, "admin1", "page:events", EventsScreen, ADMIN_PASSWORD)
        table = app.screen.query_one("#event-rows", DataTable)
        await wait_for(
            pilot,
            lambda: any(r[1] == "login_failed" and r[2] == "op1" for r in cells(table)),
            "the failed login",
        )
        failed = next(r for r in cells(table) if r[1] == "login_failed")
        assert failed[4] == CONSOLE.terminal_id
        assert "security events, newest first" in static(app, "#events-status")
        app.screen.query_one("#events-event", Input).value = "login_failed"
        await pilot.press("ctrl+r")
        await wait_for(
            pilot,
            lambda: table.row_count > 0 and {r[1] for r in cells(table)} == {"login_failed"},
            "filtered",
        )
