"""Reports from the terminal: the audit trail's report form (Ctrl+P) and the run record
(p on a procedure run) write into the plant's reports folder through the Terminal API,
show where, and are recorded (REC-2, 11.10(b))."""

from __future__ import annotations

import csv
import json

import pytest
from custos_plant import signed
from reports_kit import pdf_text
from textual.widgets import Input, Static
from ui_kit import CONSOLE, PLANT_PASSWORD, Plant, login, plant_fixture, wait_for

from hmi.ui.app import CustosApp
from hmi.ui.screens.audit import AuditScreen
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.procedures import ProceduresScreen
from hmi.ui.screens.qa_console import QaConsoleScreen
from hmi.ui.screens.report import ReportDialog

pytestmark = pytest.mark.timeout(120)
plant = plant_fixture


def static(app: CustosApp, selector: str) -> str:
    return " ".join(str(app.screen.query_one(selector, Static).render()).split())


async def open_page(pilot, app: CustosApp, user: str, key: str, screen: type) -> None:
    await login(pilot, user)
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, screen), screen.__name__)


async def test_audit_trail_report_form_writes_a_recorded_csv(plant: Plant) -> None:
    app = plant.app()
    async with app.run_test(size=(140, 40)) as pilot:
        await open_page(pilot, app, "qa1", "f7", AuditScreen)
        await wait_for(pilot, lambda: "INTEGRITY OK" in static(app, "#integrity"), "integrity")
        app.screen.query_one("#filter-user", Input).value = "admin1"
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportDialog), "report form")
        form = app.screen
        assert form.query_one("#user", Input).value == "admin1"
        form.query_one("#format", Input).value = "nonsense"
        await pilot.click("#go")
        await wait_for(pilot, lambda: "Format: write one of" in static(app, "#notice"), "notice")
        form.query_one("#format", Input).value = "csv"
        form.query_one("#format", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen), "back")
        await wait_for(pilot, lambda: "Report written" in static(app, "#signatures"), "written")
        assert "INTEGRITY OK" in static(app, "#signatures")

        # The QA console (F8) offers the same form: the signatures as JSON.
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, QaConsoleScreen), "console")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportDialog), "report form")
        app.screen.query_one("#kind", Input).value = "signatures"
        app.screen.query_one("#format", Input).value = "json"
        app.screen.query_one("#format", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Report written" in static(app, "#qa-status"), "json")

    signatures = list((plant.runtime.data / "reports").glob("signatures-qa1-*Z.json"))
    assert len(signatures) == 1
    body = json.loads(signatures[0].read_text())
    assert body["manifest"]["signatures"] and body["manifest"]["generated_by"]["user_id"] == "qa1"
    (path, detail) = plant.query(
        "SELECT target, detail FROM audit_trail WHERE action = 'report_exported' "
        "AND outcome = 'done' AND actor_id = 'qa1' ORDER BY seq"
    )[0]
    assert path == "report:audit"
    files = list((plant.runtime.data / "reports").glob("audit-qa1-*.csv"))
    assert len(files) == 1 and str(files[0]) in detail
    with files[0].open() as f:
        actors = {row["actor_id"] for row in csv.DictReader(f)}
    assert actors == {"admin1"}


async def test_run_view_writes_the_runs_record(plant: Plant) -> None:
    api = plant.runtime.api
    assert api is not None and api.procedures is not None
    op = await api.login("op1", PLANT_PASSWORD, CONSOLE)
    run = await api.procedures.start(op, CONSOLE, "sample-imaging")
    await api.procedures.sign(op, CONSOLE, run.run_id, "performed", signed("op1"), "loaded")
    await api.logout(op)
    app = plant.app()
    async with app.run_test(size=(140, 40)) as pilot:
        await open_page(pilot, app, "sup1", "f4", ProceduresScreen)
        screen = app.screen
        assert isinstance(screen, ProceduresScreen)
        screen.open_run(run.run_id)
        await pilot.press("p")
        await wait_for(pilot, lambda: "Report written" in static(app, "#report-note"), "written")

    files = list((plant.runtime.data / "reports").glob(f"{run.run_id}-sup1-*.pdf"))
    assert len(files) == 1
    _, text = pdf_text(files[0])
    flat = " ".join(text.split())
    assert f"Run ID: {run.run_id}" in flat and "Olga Operator (op1)" in flat
    assert "performed" in flat and "State: running" in flat
