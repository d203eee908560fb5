"""The procedures page: a run started, a step's data entered and signed, the step completed;
a value the core refuses is shown as the core words it and is in the audit trail."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Select
from ui_kit import PLANT_PASSWORD, Plant, dialog_text, login, texts, wait_for

from hmi.ui.screens.esign import STATEMENT, SignDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.procedures import ProceduresScreen

pytestmark = pytest.mark.timeout(150)


async def start_run(pilot, app) -> ProceduresScreen:
    await login(pilot, "op1")
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    await pilot.press("f4")
    await wait_for(pilot, lambda: isinstance(app.screen, ProceduresScreen), "procedures page")
    screen = app.screen
    table = screen.query_one("#procedures", DataTable)
    table.focus()
    row = next(r for r in range(table.row_count) if table.get_row_at(r)[0] == "Bioreactor start-up")
    table.move_cursor(row=row)
    await pilot.press("n")
    await wait_for(pilot, lambda: screen.run is not None, "run started")
    await wait_for(pilot, lambda: bool(screen.query("#f-vessel_clean")), "step fields")
    return screen


def step_status(screen: ProceduresScreen) -> list[str]:
    assert screen.run is not None
    return [s.status for s in screen.run.steps]


async def test_step_with_data_and_signature_completed(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_run(pilot, app)
        assert "Pre-checks" in texts(app)
        assert screen.check_action("complete", ()) is None  # greyed: data and signature missing
        screen.query_one("#f-vessel_clean", Select).value = "yes"
        screen.query_one("#steps", DataTable).focus()
        await pilot.press("d")
        await wait_for(
            pilot,
            lambda: screen.run is not None and screen.run.steps[0].fields[0].value == "yes",
            "data saved",
        )
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
        shown = dialog_text(app)
        assert STATEMENT in shown and "Pre-checks" in shown and "performed" in shown
        app.screen.query_one("#reason", Input).value = "checked the vessel"
        if app.screen.query("#user"):
            app.screen.query_one("#user", Input).value = "op1"
        app.screen.query_one("#password", Input).value = PLANT_PASSWORD
        await pilot.click("#sign")
        await wait_for(pilot, lambda: app.screen is screen, "signed")
        await wait_for(pilot, lambda: screen.check_action("complete", ()) is True, "complete")
        await pilot.press("c")
        await wait_for(pilot, lambda: step_status(screen)[:2] == ["done", "current"], "next step")
    rows = plant.query(
        "SELECT signer_id, meaning FROM esignatures WHERE meaning = 'performed' "
        "AND signer_id = 'op1'"
    )
    assert rows


async def test_a_refused_entry_is_shown_with_the_core_message_and_recorded(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_run(pilot, app)
        # the abort is greyed for an operator, with the core's reason on the page
        assert screen.check_action("transition", ("abort",)) is None
        assert screen.run is not None
        why = next(c.why for c in screen.run.choices if c.action == "abort")
        assert why and "Only a supervisor may abort" in why
        # the page's choice list shows the reason (the words, however wrapped)
        choices = str(screen.query_one("#choices").render())
        assert "Only a supervisor may abort" in " ".join(choices.split())
        screen.query_one("#f-vessel_clean", Select).value = "yes"
        screen.query_one("#steps", DataTable).focus()
        await pilot.press("d")
        await wait_for(
            pilot,
            lambda: screen.run is not None and screen.run.steps[0].fields[0].value == "yes",
            "data saved",
        )
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
        app.screen.query_one("#reason", Input).value = "checked"
        if app.screen.query("#user"):
            app.screen.query_one("#user", Input).value = "op1"
        app.screen.query_one("#password", Input).value = "not-my-password"
        await pilot.click("#sign")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "refusal")
        shown = dialog_text(app)
    refused = plant.query(
        "SELECT action, reason, actor_id FROM step_events WHERE outcome = 'refused'"
    )
    assert refused
    action, message, actor = refused[-1]
    assert action == "sign:performed" and actor == "op1" and message in shown


async def test_a_step_setpoint_is_written_with_the_run_attached(plant: Plant):
    from hmi.ui.screens.esign import ESignDialog
    from hmi.ui.screens.forms import ChoiceDialog
    from hmi.ui.screens.write import SetpointDialog

    app = plant.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "op1")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, ProceduresScreen), "procedures")
        screen = app.screen
        table = screen.query_one("#procedures", DataTable)
        table.focus()
        table.move_cursor(
            row=next(
                r for r in range(table.row_count) if table.get_row_at(r)[0] == "Sample imaging"
            )
        )
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.run is not None, "run started")
        run_id = screen.run.run_id
        screen.query_one("#steps", DataTable).focus()
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog), "which command")
        assert "Setpoint write of MIC1.StageX" in texts(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SetpointDialog), "setpoint dialog")
        app.screen.query_one("#value", Input).value = "120"
        app.screen.query_one("#reason", Input).value = "sample position"
        await pilot.click("#go")
        await wait_for(pilot, lambda: isinstance(app.screen, ESignDialog), "signature dialog")
        if app.screen.query("#user"):
            app.screen.query_one("#user", Input).value = "op1"
        app.screen.query_one("#password", Input).value = PLANT_PASSWORD
        await pilot.click("#sign")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, MessageDialog) and "Done" in dialog_text(app),
            "written",
        )
    rows = plant.query(
        "SELECT run_id FROM audit_trail WHERE action = 'write_setpoint' "
        "AND target = 'MIC1.StageX' AND outcome = 'done'"
    )
    assert rows == [(run_id,)]
