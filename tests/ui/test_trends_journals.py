"""Trends, alarm history and security events on the running plant: the history plotted with
its setpoint and limits, an alarm's journal rows, a failed login in the security events."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import SelectionList, Static
from textual_plotext import PlotextPlot
from ui_kit import Plant, login, plant_fixture, wait_for  # noqa: F401

from hmi.ui.app import CustosApp
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.trends import TrendsScreen

pytestmark = pytest.mark.timeout(120)


def static(app: CustosApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_page(pilot, app: CustosApp, user: str, key: str, screen: type) -> None:
    await login(pilot, user)
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
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
