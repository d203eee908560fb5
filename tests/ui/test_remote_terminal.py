"""The same terminal UI over a link to the runtime: login, live values, a signed setpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import Input
from ui_kit import (
    PLANT_PASSWORD,
    Plant,
    dialog_text,
    login,
    plant_fixture,  # noqa: F401  (the plant fixture)
    texts,
    wait_for,
)

from hmi.remote import protocol as rpc
from hmi.remote.server import TerminalServer
from hmi.remote_terminal import connect, remote_app
from hmi.terminal import initial_links
from hmi.ui.screens.esign import ESignDialog
from hmi.ui.screens.login import LoginScreen
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.write import SetpointDialog
from hmi.ui.widgets.equipment import EquipmentPanel

pytestmark = pytest.mark.timeout(120)


async def listen(plant: Plant, path: Path) -> tuple[TerminalServer, asyncio.Server]:
    assert plant.runtime.api is not None and plant.runtime.services is not None
    server = TerminalServer(
        plant.runtime.api,
        plant.runtime.services.config.terminals,
        plant="Test plant",
        links=lambda: initial_links(plant.runtime),
    )
    listener = await asyncio.start_unix_server(server.serve_unix, path, limit=rpc.MAX_MESSAGE)
    return server, listener


@pytest.fixture
async def socket_path(plant: Plant, tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "t.sock"
    _, listener = await listen(plant, path)
    yield path
    listener.close()
    await listener.wait_closed()


async def test_a_remote_terminal_shows_live_values_and_signs_a_setpoint(
    plant: Plant, socket_path: Path
) -> None:
    api = await connect(f"unix:{socket_path}", terminal="T-CONSOLE-1")
    app = remote_app(api)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), "login")
            await login(pilot, "op1")
            await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
            await wait_for(pilot, lambda: "AGIT_SP 150.000 rpm" in texts(app), "live values")
            assert "Test plant" in texts(app) and "T-CONSOLE-1" in texts(app)
            await wait_for(pilot, lambda: "PLC1 UP" in texts(app), "the device links")

            panel = app.screen.query_one("#panel-BR101", EquipmentPanel)
            panel.focus()
            panel.move_cursor(row=panel.get_row_index("BR101.AGIT_SP"))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SetpointDialog), "setpoint")
            app.screen.query_one("#value", Input).value = "210"
            app.screen.query_one("#reason", Input).value = "remote mixing"
            await pilot.click("#go")
            await wait_for(pilot, lambda: isinstance(app.screen, ESignDialog), "signature")
            assert "→ 210" in dialog_text(app)
            app.screen.query_one("#password", Input).value = PLANT_PASSWORD
            if app.screen.query("#user"):
                app.screen.query_one("#user", Input).value = "op1"
            await pilot.click("#sign")
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, MessageDialog) and "Done" in dialog_text(app),
                "outcome",
            )
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: "AGIT_SP 210.000 rpm" in texts(app), "the new value on the overview"
            )
    finally:
        await api.client.close()
    assert plant.value("BR101.AGIT_SP") == pytest.approx(210.0)
    rows = plant.query(
        "SELECT actor_id, terminal_id, source_address FROM audit_trail "
        "WHERE action = 'write_setpoint' AND outcome = 'done'"
    )
    assert len(rows) == 1 and rows[0][:2] == ("op1", "T-CONSOLE-1")
    assert str(rows[0][2]).startswith("local:")


async def test_a_dropped_link_returns_to_login_and_the_terminal_dials_again(
    plant: Plant, tmp_path: Path
) -> None:
    path = tmp_path / "r.sock"
    server, listener = await listen(plant, path)
    api = await connect(f"unix:{path}", terminal="T-CONSOLE-1")
    linked = asyncio.create_task(api.keep_linked())
    app = remote_app(api)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), "login")
            await login(pilot, "op1")
            await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
            first = api.client

            listener.close()  # the runtime's listener goes, and with it this link
            await listener.wait_closed()
            for conn in list(server.connections):
                conn.writer.transport.abort()
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, LoginScreen) and "reconnecting" in texts(app),
                "back at the login, told why",
            )
            assert app.session is None

            _, listener = await listen(plant, path)
            await wait_for(
                pilot,
                lambda: api.client is not first and "Connected to the runtime again" in texts(app),
                "dialled again",
                timeout=30,
            )
            await login(pilot, "op1")
            await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview again")
    finally:
        linked.cancel()
        await api.client.close()
        listener.close()
    ended = plant.query(
        "SELECT user_id FROM security_event_records WHERE event = 'terminal_disconnected'"
    )
    assert ended == [("op1",)]
