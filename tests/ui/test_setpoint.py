"""A setpoint change through the dialogs, signed and recorded; a refusal shown as the core
words it (SUP-8, 11.50, 11.200)."""

from __future__ import annotations

import pytest
from textual.widgets import Input
from ui_kit import (
    PLANT_PASSWORD,
    Plant,
    dialog_text,
    login,
    plant_fixture,  # noqa: F401  (the plant fixture)
    wait_for,
)

from hmi.ui.app import CustosApp
from hmi.ui.screens.esign import STATEMENT, ESignDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.write import SetpointDialog
from hmi.ui.widgets.equipment import EquipmentPanel

pytestmark = pytest.mark.timeout(120)


async def open_setpoint(pilot, app: CustosApp, tag: str) -> None:
    await login(pilot, "op1")
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    panel = app.screen.query_one("#panel-BR101", EquipmentPanel)
    panel.focus()
    panel.move_cursor(row=panel.get_row_index(tag))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SetpointDialog), "setpoint dialog")


async def fill(pilot, app: CustosApp, **values: str) -> None:
    for field, value in values.items():
        app.screen.query_one(f"#{field}", Input).value = value
    await pilot.pause()


async def test_setpoint_write_is_signed_shown_and_recorded(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_setpoint(pilot, app, "BR101.AGIT_SP")
        assert "Limits: 0.000 … 600.000 rpm" in dialog_text(app)
        await fill(pilot, app, value="180", reason="more mixing")
        await pilot.click("#go")
        await wait_for(pilot, lambda: isinstance(app.screen, ESignDialog), "signature dialog")
        shown = dialog_text(app)
        assert STATEMENT in shown
        assert "more mixing" in shown and "BR101.AGIT_SP" in shown and "→ 180" in shown
        password = app.screen.query_one("#password", Input)
        assert password.password  # masked
        await fill(pilot, app, password="wrong-password")
        if app.screen.query("#user"):
            await fill(pilot, app, user="op1")
        await pilot.click("#sign")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "refusal")
        assert "Signature not accepted" in dialog_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ESignDialog), "form kept")
        assert app.screen.query_one("#password", Input).value == "wrong-password"
        await fill(pilot, app, password=PLANT_PASSWORD)
        await pilot.click("#sign")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, MessageDialog) and "Done" in dialog_text(app),
            "outcome",
        )
        assert "Olga Operator (op1)" in dialog_text(app)
    assert plant.value("BR101.AGIT_SP") == pytest.approx(180.0)
    rows = plant.query(
        "SELECT actor_id, new_value, reason, signature_ids FROM audit_trail "
        "WHERE action = 'write_setpoint' AND target = 'BR101.AGIT_SP' AND outcome = 'done'"
    )
    assert len(rows) == 1
    actor, new, reason, signature_ids = rows[0]
    assert (actor, reason) == ("op1", "more mixing")
    assert float(new) == pytest.approx(180.0)
    signatures = plant.query("SELECT signature_id, signer_id, meaning FROM esignatures")
    mine = [(who, meaning) for sid, who, meaning in signatures if sid in str(signature_ids)]
    assert mine == [("op1", "performed")]


async def test_out_of_range_is_refused_in_a_dialog_with_the_core_message(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_setpoint(pilot, app, "BR101.AGIT_SP")
        await fill(pilot, app, value="9000", reason="too much")
        await pilot.click("#go")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "refusal dialog")
        shown = dialog_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SetpointDialog), "dialog kept")
    refused = plant.query(
        "SELECT detail FROM audit_trail WHERE target = 'BR101.AGIT_SP' AND outcome = 'refused'"
    )
    assert len(refused) == 1
    title, message = refused[0][0].split(": ", 1)  # the record keeps "title: message"
    assert title in shown and message in shown
