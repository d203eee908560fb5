"""The audit trail and QA console screens on the running plant: integrity shown with the
rows, signatures with their manifestation, QA SQL run, exported, and cancelled while the
screen keeps refreshing (11.10(e), 11.50, SUP-11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static, TextArea, Tree
from ui_kit import CONSOLE, PLANT_PASSWORD, Plant, dialog_text, login, wait_for

from hmi.core.api import Credentials, SetpointRequest
from hmi.ui.app import CustosApp
from hmi.ui.screens.audit import AuditScreen
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.qa_console import QaConsoleScreen

pytestmark = pytest.mark.timeout(120)

SLOW = (
    "WITH t(x) AS (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) "
    "SELECT count(*) FROM t a, t b, t c, t d, t e, t f, t g, t h, t i, t j "
    "WHERE a.x + b.x + c.x + d.x + e.x + f.x + g.x + h.x + i.x = j.x"
)


def static(app: CustosApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_page(pilot, app: CustosApp, user: str, key: str, screen: type) -> None:
    await login(pilot, user)
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, screen), screen.__name__)


async def signed_write(plant: Plant) -> None:
    api = plant.runtime.api
    assert api is not None
    op = await api.login("op1", PLANT_PASSWORD, CONSOLE)
    request = SetpointRequest(
        "BR101.PH_SP", 7.0, "growth phase", Credentials(PLANT_PASSWORD, "op1")
    )
    assert (await api.request_write(op, CONSOLE, request)).outcome == "done"
    await api.logout(op)


async def test_audit_trail_shows_integrity_filters_and_signatures(plant: Plant) -> None:
    await signed_write(plant)
    app = plant.app()
    async with app.run_test(size=(140, 40)) as pilot:
        await open_page(pilot, app, "sup1", "f7", AuditScreen)
        await wait_for(pilot, lambda: "INTEGRITY OK" in static(app, "#integrity"), "integrity")
        assert "signed checkpoint" in static(app, "#integrity")

        app.screen.query_one("#filter-user", Input).value = "op1"
        app.screen.query_one("#filter-action", Input).value = "write_setpoint"
        await pilot.press("ctrl+r")
        table = app.screen.query_one("#audit-rows", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "the attempt and the write")
        assert "INTEGRITY OK" in static(app, "#integrity")
        table.focus()
        table.move_cursor(row=0)  # newest first: the completed write
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Olga Operator (op1)" in static(app, "#signatures"), "sig")
        shown = static(app, "#signatures")
        assert shown.rstrip().endswith("performed — growth phase")
        assert "+0000" in shown  # local time with its UTC offset (the host runs in UTC)

        app.screen.query_one("#filter-from", Input).value = "yesterday"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "not a date")
        assert "is not a date" in dialog_text(app)


async def test_audit_trail_is_not_offered_to_an_operator(plant: Plant) -> None:
    app = plant.app()
    async with app.run_test(size=(120, 32)) as pilot:
        await open_page(pilot, app, "op1", "f2", OverviewScreen)
        assert app.check_action("go", ("audit",)) is False
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_qa_console_runs_exports_and_cancels_without_freezing(
    plant: Plant, tmp_path: Path
) -> None:
    app = plant.app()
    async with app.run_test(size=(140, 40)) as pilot:
        await open_page(pilot, app, "qa1", "f8", QaConsoleScreen)
        views = app.screen.query_one("#views", Tree)
        await wait_for(
            pilot, lambda: "audit_trail" in [str(n.label) for n in views.root.children], "views"
        )

        app.screen.query_one(
            "#sql", TextArea
        ).text = "SELECT seq, event FROM security_events ORDER BY seq LIMIT 3"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: " rows in " in static(app, "#qa-status"), "results")
        assert static(app, "#qa-status").startswith("3 rows in ")
        assert app.screen.query_one("#results", DataTable).row_count == 3

        out = tmp_path / "result.csv"
        app.screen.query_one("#csv-path", Input).value = str(out)
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: "exported to" in static(app, "#qa-status"), "export")
        assert (
            out.read_text().splitlines()[0] == "seq,event"
            and len(out.read_text().splitlines()) == 4
        )

        # A slow query: the running time keeps counting (the screen refreshes), Ctrl+K stops it.
        app.screen.query_one("#sql", TextArea).text = SLOW
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "Running" in static(app, "#qa-status"), "running")
        first = static(app, "#qa-status")
        await wait_for(
            pilot, lambda: static(app, "#qa-status") not in (first, ""), "the time counts up"
        )
        assert "Running" in static(app, "#qa-status")
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "cancelled")
        assert "Query cancelled" in dialog_text(app)
    last = plant.query("SELECT actor_id, outcome, reason FROM qa_queries ORDER BY seq DESC LIMIT 1")
    assert last[0][:2] == ("qa1", "refused") and "cancelled" in last[0][2]
