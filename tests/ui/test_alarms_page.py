"""The alarms page: an alarm raised at the plant is acknowledged and shelved (signed)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input
from ui_kit import PLANT_PASSWORD, Plant, dialog_text, login, texts, wait_for

from hmi.ui.screens.alarms import AlarmsScreen
from hmi.ui.screens.esign import STATEMENT, SignDialog
from hmi.ui.screens.forms import ReasonDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen

pytestmark = pytest.mark.timeout(120)
ALARM = "BR101.HEATER_FAULT"


def state(plant: Plant) -> str:
    assert plant.runtime.api is not None and plant.runtime.api.alarms is not None
    engine = plant.runtime.api.alarms.engine
    return next(a.state.value for a in engine.alarms.values() if a.tag == ALARM)


async def open_alarms(pilot, app, plant: Plant, user: str = "op1") -> DataTable:
    await login(pilot, user)
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    plant.plc.set("HEATER_FAULT", True)
    await pilot.press("f3")
    await wait_for(pilot, lambda: isinstance(app.screen, AlarmsScreen), "alarms page")
    table = app.screen.query_one("#active", DataTable)
    listed = lambda: any(table.get_row_at(r)[-1] == ALARM for r in range(table.row_count))  # noqa: E731
    await wait_for(pilot, listed, "alarm listed", 30)
    return table


async def select(pilot, table: DataTable, tag: str) -> None:
    for row in range(table.row_count):
        if table.get_row_at(row)[-1] == tag:
            table.move_cursor(row=row)
            await pilot.pause()
            return
    raise AssertionError(f"{tag} not listed")


async def test_operator_acknowledges(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_alarms(pilot, app, plant)
        assert "!!! P2 HIGH" in texts(app) and "UNACK" in texts(app)
        await select(pilot, table, ALARM)
        await pilot.press("a")
        await wait_for(pilot, lambda: state(plant) == "ACK_ACTIVE", "acknowledged")
        await wait_for(pilot, lambda: "acked" in texts(app), "shown acknowledged")
    rows = plant.query(
        "SELECT actor_id FROM audit_trail WHERE action = 'alarm_acknowledge' AND outcome = 'done'"
    )
    assert rows == [("op1",)]


async def test_supervisor_shelves_signed(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_alarms(pilot, app, plant, "sup1")
        await select(pilot, table, ALARM)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ReasonDialog), "reason form")
        app.screen.query_one("#minutes", Input).value = "30"
        app.screen.query_one("#reason", Input).value = "heater under repair"
        await pilot.click("#go")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature")
        shown = dialog_text(app)
        assert STATEMENT in shown and "30 min" in shown and "heater under repair" in shown
        password = app.screen.query_one("#password", Input)
        assert password.password
        if app.screen.query("#user"):
            app.screen.query_one("#user", Input).value = "sup1"
        password.value = PLANT_PASSWORD
        await pilot.click("#sign")
        await wait_for(pilot, lambda: isinstance(app.screen, AlarmsScreen), "signed")
        await wait_for(pilot, lambda: state(plant) == "SHELVED", "shelved")
        app.screen.query_one("#alarm-tabs").active = "pane-hidden"
        hidden = app.screen.query_one("#hidden", DataTable)
        await wait_for(pilot, lambda: hidden.row_count == 1, "hidden list")
        assert "heater under repair" in str(hidden.get_row_at(0)[4])
        assert "SHELVED" in texts(app)
    rows = plant.query(
        "SELECT actor_id, reason, signature_ids FROM audit_trail WHERE action LIKE '%shelve%' "
        "AND outcome = 'done'"
    )
    assert rows and rows[0][0] == "sup1" and rows[0][1] == "heater under repair"


async def test_an_operator_may_not_hide_an_alarm_refusal_shown_and_recorded(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_alarms(pilot, app, plant)
        await select(pilot, table, ALARM)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ReasonDialog), "reason form")
        app.screen.query_one("#reason", Input).value = "sensor replaced"
        await pilot.click("#go")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature")
        if app.screen.query("#user"):
            app.screen.query_one("#user", Input).value = "op1"
        app.screen.query_one("#password", Input).value = PLANT_PASSWORD
        await pilot.click("#sign")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "refusal")
        shown = dialog_text(app)
    refused = plant.query(
        "SELECT detail FROM audit_trail WHERE action = 'alarm_out_of_service' "
        "AND outcome = 'refused'"
    )
    assert refused
    assert refused[0][0].split(": ", 1)[1] in shown
