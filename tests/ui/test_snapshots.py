"""How the login, overview and signature screens look at 80x24 and 120x40.

The clock is frozen, values come from a fixed stand-in API and the cursor does
not blink, so a changed picture means a changed screen. Update with
``pytest tests/ui/test_snapshots.py --snapshot-update`` after checking the
report.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from fake_api import ORIGIN, FakeAPI, operator_session
from textual.pilot import Pilot
from textual.widgets import Input

from hmi.core.api_types import SigningPreview
from hmi.core.clock import FakeClock
from hmi.core.esign import SignatureRequest
from hmi.ui.app import CustosApp
from hmi.ui.screens.esign import ESignDialog, WriteIntent

SIZES = [(80, 24), (120, 40)]


def make_app() -> CustosApp:
    return CustosApp(
        FakeAPI(),  # type: ignore[arg-type]
        ORIGIN,
        plant_name="Custos demo plant",
        clock=FakeClock(),
        tz=UTC,
        links={"PLC1": "UP", "MIC1": "DOWN"},
    )


async def still(pilot: Pilot[None]) -> None:
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_login(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=still)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview(snap_compare, size):
    async def logged_in(pilot: Pilot[None]) -> None:
        pilot.app.start_session(operator_session())  # type: ignore[attr-defined]
        await pilot.pause()
        await still(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=logged_in)


def test_signature_dialog(snap_compare):
    request = SignatureRequest(
        "write_setpoint", "BR101.TEMP_SP", "performed", "new recipe", "37.0", "37.5", "°C"
    )
    preview = SigningPreview(request, "double", True, request.digest())

    async def signing(pilot: Pilot[None]) -> None:
        pilot.app.start_session(operator_session())  # type: ignore[attr-defined]
        await pilot.pause()
        intent = WriteIntent("BR101.TEMP_SP", 37.5, "new recipe", "write_setpoint")
        await pilot.app.push_screen(ESignDialog(intent, preview))
        await still(pilot)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=signing)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_alarms_page(snap_compare, size):
    async def alarms(pilot: Pilot[None]) -> None:
        pilot.app.start_session(operator_session())  # type: ignore[attr-defined]
        await pilot.pause()
        pilot.app.open_page("alarms")  # type: ignore[attr-defined]
        await pilot.pause()
        await still(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=alarms)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_procedures_page(snap_compare, size):
    async def run_open(pilot: Pilot[None]) -> None:
        pilot.app.start_session(operator_session())  # type: ignore[attr-defined]
        await pilot.pause()
        pilot.app.open_page("procedures")  # type: ignore[attr-defined]
        await pilot.pause()
        pilot.app.screen.open_run("r-0001-demo")  # type: ignore[attr-defined]
        await pilot.pause()
        await still(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_open)
