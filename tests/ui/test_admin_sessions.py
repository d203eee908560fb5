"""Who is logged in where, and an administrator ending a session from the Admin screen:
the other terminal goes back to its login and says why (SUP-9, SUP-10)."""

from __future__ import annotations

import pytest
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD
from test_admin_engineer import fill, open_page
from textual.widgets import DataTable
from ui_kit import (
    CONSOLE,
    PLANT_PASSWORD,
    Plant,
    dialog_text,
    login,
    plant_fixture,  # noqa: F401  (the plant fixture)
    texts,
    wait_for,
)

from hmi.core.records import Origin
from hmi.ui.screens.admin import AdminScreen
from hmi.ui.screens.login import LoginScreen
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.sign import FormDialog

pytestmark = pytest.mark.timeout(120)
DESK = Origin("T-SUPERVISOR-1", "local:op@host")


async def test_the_admin_screen_lists_sessions_and_ends_one(plant: Plant) -> None:
    api = plant.runtime.api
    assert api is not None
    other = await api.login("op1", PLANT_PASSWORD, DESK)
    app = plant.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_page(pilot, app, ADMIN_ID, ADMIN_PASSWORD, "f12", AdminScreen)
        table = app.screen.query_one("#sessions", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "both sessions listed")
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert [r[0] for r in rows] == ["T-CONSOLE-1", "T-SUPERVISOR-1"]
        assert rows[1][1] == "op1 (Olga Operator)" and rows[1][2] == "local:op@host"

        table.focus()
        table.move_cursor(row=1)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), "reason form")
        await fill(pilot, app, reason="left logged in")
        await pilot.click("#ok")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "outcome")
        assert "op1 (Olga Operator) at T-SUPERVISOR-1 is logged out" in dialog_text(app)
        assert other.session_id not in api.identity.sessions
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.row_count == 1, "the list without it")
    [(reason,)] = plant.query(
        "SELECT reason FROM audit_trail WHERE action = 'end_session' AND outcome = 'done'"
    )
    assert reason == "left logged in"


async def test_a_terminal_whose_session_an_administrator_ends_says_so(plant: Plant) -> None:
    api = plant.runtime.api
    assert api is not None and api.admin is not None
    app = plant.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await login(pilot, "op1", PLANT_PASSWORD)
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        assert app.session is not None
        admin = await api.login(ADMIN_ID, ADMIN_PASSWORD, CONSOLE)
        await api.admin.end_session(admin, CONSOLE, app.session.session_id, "shift change")
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), "back to login")
        assert app.session is None
        assert "An administrator ended your session." in texts(app)
        assert "Olga Operator" not in texts(app)
