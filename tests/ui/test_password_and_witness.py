"""First login forces a password change; a double signature is witnessed at the terminal or
sent for approval (11.300, 11.200, SUP-8)."""

from __future__ import annotations

import pytest
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD
from textual.widgets import Input, RadioButton
from ui_kit import (
    CONSOLE,
    PLANT_PASSWORD,
    Plant,
    dialog_text,
    login,
    plant_fixture,  # noqa: F401  (the plant fixture)
    wait_for,
)

from hmi.core.useradmin import Credentials
from hmi.ui.screens.esign import ESignDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.password import PasswordScreen
from hmi.ui.screens.write import SetpointDialog
from hmi.ui.widgets.equipment import EquipmentPanel

pytestmark = pytest.mark.timeout(120)


async def fill(pilot, app, **values: str) -> None:
    for field, value in values.items():
        app.screen.query_one(f"#{field.replace('_', '-')}", Input).value = value
    await pilot.pause()


async def test_first_login_requires_a_new_password_before_anything_else(plant: Plant):
    services = plant.runtime.services
    assert services is not None
    admin = await services.identity.login(ADMIN_ID, ADMIN_PASSWORD, CONSOLE)
    temporary = await services.admin.add_user(
        admin, Credentials(ADMIN_PASSWORD, ADMIN_ID), "op9", "Nina New", ("operator",), "new"
    )
    await services.identity.logout(admin)
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "op9", temporary)
        await wait_for(pilot, lambda: isinstance(app.screen, PasswordScreen), "password change")
        await pilot.press("f2")  # no way around it
        assert isinstance(app.screen, PasswordScreen)
        await fill(pilot, app, old=temporary, new="Fresh-pass-9", again="Fresh-pass-9")
        await pilot.click("#change")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")


async def start_change(pilot, app, tag: str, value: str) -> None:
    await login(pilot, "op1")
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    panel = app.screen.query_one("#panel-BR101", EquipmentPanel)
    panel.move_cursor(row=panel.get_row_index(tag))
    panel.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SetpointDialog), "setpoint dialog")
    await fill(pilot, app, value=value, reason="new recipe")
    await pilot.click("#go")
    await wait_for(pilot, lambda: isinstance(app.screen, ESignDialog), "signature dialog")


async def test_double_signature_witnessed_here(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        target = float(plant.value("BR101.TEMP_SP")) + 0.5  # within the rate-of-change limit
        await start_change(pilot, app, "BR101.TEMP_SP", str(target))
        assert "A second person must sign this." in dialog_text(app)
        if app.screen.query("#user"):
            await fill(pilot, app, user="op1")
        await fill(pilot, app, password=PLANT_PASSWORD)
        await fill(pilot, app, witness_user="sup1", witness_password=PLANT_PASSWORD)
        await pilot.click("#sign")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, MessageDialog) and "Done" in dialog_text(app),
            "outcome",
        )
        text = dialog_text(app)
        assert "Olga Operator (op1)" in text and "Sam Supervisor (sup1)" in text
    assert plant.value("BR101.TEMP_SP") == pytest.approx(target)


async def test_double_signature_sent_for_approval(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        target = float(plant.value("BR101.TEMP_SP")) - 0.5
        await start_change(pilot, app, "BR101.TEMP_SP", str(target))
        app.screen.query_one("#approval", RadioButton).value = True
        await wait_for(pilot, lambda: not app.screen.query_one("#witness").display, "no witness")
        if app.screen.query("#user"):
            await fill(pilot, app, user="op1")
        await fill(pilot, app, password=PLANT_PASSWORD)
        await pilot.click("#sign")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, MessageDialog) and "Sent for approval" in dialog_text(app)
            ),
            "pending outcome",
        )
    assert plant.runtime.api is not None
    pending = plant.runtime.api.approvals.list_pending()
    assert [p.tag for p in pending] == ["BR101.TEMP_SP"]
