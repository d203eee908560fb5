"""The approvals page: a double-signature setpoint sent for approval by the operator is
approved by a supervisor logged in at the same terminal, signed in full; the count of
waiting approvals shows in the header for those who may approve."""

from __future__ import annotations

import pytest
from ui_kit import CONSOLE, PLANT_PASSWORD, Plant, dialog_text, login, texts, wait_for

from hmi.core.api_types import SetpointRequest
from hmi.core.commands import Credentials
from hmi.ui.screens.approvals import ApprovalsScreen
from hmi.ui.screens.esign import STATEMENT, SignDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen

pytestmark = pytest.mark.timeout(120)


async def queue_change(plant: Plant) -> float:
    api = plant.runtime.api
    assert api is not None
    op = await api.login("op1", PLANT_PASSWORD, CONSOLE)
    target = float(plant.value("BR101.TEMP_SP")) + 0.5
    request = SetpointRequest(
        "BR101.TEMP_SP", target, "new recipe", Credentials(PLANT_PASSWORD, "op1")
    )
    outcome = await api.request_write(op, CONSOLE, request)
    assert outcome.outcome == "pending"
    await api.logout(op)
    return target


async def test_supervisor_approves_with_a_full_signature(plant: Plant):
    target = await queue_change(plant)
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sup1")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        await wait_for(pilot, lambda: "APPROVALS 1" in texts(app), "count in header")
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalsScreen), "approvals")
        await wait_for(pilot, lambda: "Olga Operator (op1)" in texts(app), "request shown")
        shown = texts(app)
        assert "BR101.TEMP_SP" in shown and "new recipe" in shown and "T-CONSOLE-1" in shown
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
        assert STATEMENT in dialog_text(app) and "approved" in dialog_text(app)
        app.screen.query_one("#reason").value = "recipe checked"
        app.screen.query_one("#user").value = "sup1"
        app.screen.query_one("#password").value = PLANT_PASSWORD
        await pilot.click("#sign")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, MessageDialog) and "Approved" in dialog_text(app),
            "approved",
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Nothing waits for approval." in texts(app), "emptied")
        await wait_for(pilot, lambda: "APPROVALS " not in texts(app), "count gone")
    assert plant.value("BR101.TEMP_SP") == pytest.approx(target)
    rows = plant.query("SELECT signer_id, meaning FROM esignatures WHERE meaning = 'approved'")
    assert ("sup1", "approved") in rows


async def test_operator_sees_no_approval_count(plant: Plant):
    await queue_change(plant)
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "op1")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        await pilot.pause(1.2)
        assert "APPROVALS " not in texts(app)
