"""Login, refusal as the core words it, and logout that leaves nothing behind (SUP-10, 11.300)."""

from __future__ import annotations

import pytest
from ui_kit import (
    Plant,
    dialog_text,
    login,
    plant_fixture,  # noqa: F401  (the plant fixture)
    texts,
    wait_for,
)

from hmi.core.identity import LOGIN_FAILED
from hmi.ui.screens.login import LoginScreen
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.widgets.equipment import EquipmentPanel

pytestmark = pytest.mark.timeout(120)


async def test_wrong_password_shows_the_core_message_and_nothing_of_the_plant(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "op1", "not-the-password")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "refusal dialog")
        assert app.session is None
        message = LOGIN_FAILED.format(n=3)
        assert message in dialog_text(app)
        assert "Not authenticated" in dialog_text(app)
        assert not any(s.query(EquipmentPanel) for s in app.screen_stack)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), "back to the form")
    rows = plant.query(
        "SELECT event FROM security_events WHERE user_id = 'op1' ORDER BY seq DESC LIMIT 1"
    )
    assert rows == [("login_failed",)]


async def test_login_shows_live_values_and_logout_clears_every_screen(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "op1")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        panel = app.screen.query_one("#panel-BR101", EquipmentPanel)
        await wait_for(
            pilot,
            lambda: panel.get_cell("BR101.TEMP_SP", "Value").plain.strip() not in ("", "----"),
            "a live setpoint value",
        )
        shown = float(panel.get_cell("BR101.TEMP_SP", "Value").plain)
        assert shown == pytest.approx(float(plant.value("BR101.TEMP_SP")), abs=1e-3)
        assert "Olga Operator" in texts(app)
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), "login after logout")
        assert app.session is None
        assert len(app.screen_stack) == 2  # the default screen and the login, nothing else
        assert "Olga Operator" not in texts(app)
        assert "Logged out." in texts(app)
    rows = plant.query("SELECT event FROM security_events WHERE user_id = 'op1' ORDER BY seq")
    assert [r[0] for r in rows][-2:] == ["login", "logout"]
