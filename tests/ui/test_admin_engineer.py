"""The Admin and Engineer screens on the running plant: an account added, signed, its
temporary password shown once; a configuration draft checked with the cursor put at the
key, diffed, submitted as a signed proposed version that changes nothing until QA approves
it on the versions page (11.300, issue 5, SUP-12)."""

from __future__ import annotations

import pytest
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD
from textual.widgets import DataTable, Input, TextArea
from ui_kit import CONSOLE, PLANT_PASSWORD, Plant, dialog_text, login, wait_for

from hmi.core.api import Credentials
from hmi.core.errors import PasswordChangeRequired
from hmi.ui.app import CustosApp
from hmi.ui.screens.admin import AdminScreen
from hmi.ui.screens.config_versions import ConfigVersionsScreen
from hmi.ui.screens.engineer import DiffDialog, EngineerScreen
from hmi.ui.screens.esign import SignDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.sign import FormDialog
from hmi.ui.toml_keys import key_line

pytestmark = pytest.mark.timeout(120)
ENGINEER_PASSWORD = "Engineer9pass"


async def fill(pilot, app: CustosApp, **values: str) -> None:
    for field, value in values.items():
        app.screen.query_one(f"#{field}", Input).value = value
    await pilot.pause()


async def sign(pilot, app: CustosApp, user: str, password: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
    await fill(pilot, app, user=user, password=password)
    await pilot.click("#sign")


async def open_page(pilot, app: CustosApp, user: str, password: str, key: str, screen: type):
    await login(pilot, user, password)
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, screen), screen.__name__)


async def test_an_account_is_added_signed_and_its_password_shown_once(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_page(pilot, app, ADMIN_ID, ADMIN_PASSWORD, "f12", AdminScreen)
        table = app.screen.query_one("#users", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 6, "accounts listed")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), "add form")
        await fill(
            pilot, app, user_id="eng1", full_name="Erin Engineer", roles="engineer", reason="hire"
        )
        await pilot.click("#ok")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
        shown = dialog_text(app)
        assert "user:eng1" in shown and "Erin Engineer; roles=engineer" in shown
        assert app.screen.query_one("#password", Input).password
        await sign(pilot, app, ADMIN_ID, ADMIN_PASSWORD)
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), "password shown")
        text = dialog_text(app)
        assert "Shown once" in text
        temporary = text.split("Temporary password for eng1: ", 1)[1].split()[0]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AdminScreen), "back to the table")
        await wait_for(pilot, lambda: table.row_count >= 7, "new account listed")
        assert "must change" in str(table.get_row("eng1"))
    api = plant.runtime.api
    assert api is not None
    session = await api.login("eng1", temporary, CONSOLE)
    with pytest.raises(PasswordChangeRequired):
        api.read_tags(session)
    [(actor, signatures)] = plant.query(
        "SELECT actor_id, signature_ids FROM audit_trail WHERE action = 'add_user' "
        "AND target = 'user:eng1'"
    )
    assert actor == ADMIN_ID and signatures
    assert temporary not in str(plant.query("SELECT * FROM audit_trail"))


async def engineer(plant: Plant) -> None:
    api = plant.runtime.api
    assert api is not None and api.admin is not None
    admin = await api.login(ADMIN_ID, ADMIN_PASSWORD, CONSOLE)
    temp = await api.admin.add_user(
        admin,
        CONSOLE,
        "eng1",
        "Erin Engineer",
        ("engineer",),
        "hire",
        Credentials(ADMIN_PASSWORD, ADMIN_ID),
    )
    first = await api.login("eng1", temp, CONSOLE)
    await api.change_password(first, temp, ENGINEER_PASSWORD)
    await api.logout(first)
    await api.logout(admin)


async def test_a_configuration_change_is_checked_at_the_key_and_requested(plant: Plant):
    await engineer(plant)
    app = plant.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await open_page(pilot, app, "eng1", ENGINEER_PASSWORD, "f9", EngineerScreen)
        screen = app.screen
        assert isinstance(screen, EngineerScreen)
        screen.open_file("tags.toml")
        editor = screen.query_one("#editor", TextArea)
        approved = editor.text
        editor.load_text(approved.replace('type = "int16"', 'type = "int12"', 1))
        await pilot.press("ctrl+t")
        problems = screen.query_one("#problems", DataTable)
        await wait_for(pilot, lambda: problems.row_count == 1, "problem listed")
        file, key, message = problems.get_row_at(0)
        assert file == "tags.toml" and key.endswith(".type") and "Input should be" in message
        row, _ = editor.cursor_location
        assert editor.document.get_line(row).startswith('type = "int12"')

        changed = approved.replace('"Feed pump run command"', '"Feed pump run (P-101)"')
        editor.load_text(changed)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: problems.row_count == 0, "no problems")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffDialog), "diff")
        diff = app.screen.query_one("#diff-text", TextArea).text
        assert '+description = "Feed pump run (P-101)"' in diff
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back to the editor")

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), "reason")
        await fill(pilot, app, reason="P&ID tag number")
        await pilot.click("#ok")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
        assert "authored" in dialog_text(app)
        await sign(pilot, app, "eng1", ENGINEER_PASSWORD)
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, MessageDialog) and "Proposed as" in dialog_text(app),
            "version proposed",
        )
        assert "needs approval by qa" in dialog_text(app)
        assert "Erin Engineer (eng1)" in dialog_text(app)
        await pilot.press("escape")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigVersionsScreen), "versions")
        table = app.screen.query_one("#versions", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "versions listed")
        assert table.get_row_at(0)[:2] == ["2", "proposed"]
    [(version, event, files)] = plant.query(
        "SELECT version, event, changed_files FROM config_versions WHERE event = 'proposed'"
    )
    assert (version, event, files) == (2, "proposed", "tags.toml")
    config_dir = plant.runtime.config_dir
    assert config_dir is not None and (config_dir / "tags.toml").read_text() == approved

    # QA approves it on the versions page: written to the configuration directory.
    app = plant.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "qa1", PLANT_PASSWORD)
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        app.action_go("config-versions")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigVersionsScreen), "versions")
        table = app.screen.query_one("#versions", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "versions listed")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, SignDialog), "signature dialog")
        assert "tags.toml" in dialog_text(app) and "approved" in dialog_text(app)
        await fill(pilot, app, reason="reviewed", user="qa1", password=PLANT_PASSWORD)
        await pilot.click("#sign")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, MessageDialog) and "approved" in dialog_text(app),
            "approved",
        )
        # A description is no driver's business: it is applied in the running plant at once.
        assert "Applied now: tag definitions BR101.FEED_PUMP" in dialog_text(app)
        assert "Quinn Quality (qa1)" in dialog_text(app)
    assert (config_dir / "tags.toml").read_text() == changed


async def test_an_operator_is_not_offered_the_admin_screen(plant: Plant):
    app = plant.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await login(pilot, "op1", PLANT_PASSWORD)
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
        assert app.check_action("go", ("admin",)) is False
        await pilot.press("f12")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


def test_key_paths_are_found_in_the_text():
    text = '[plant]\nname = "x"\n\n[[tag]]\nname = "A"\ntype = "bool"\n\n[[tag]]\nname = "B"\n'
    text += 'type = "int16"\n\n[commands]\napproval_expiry_s = 10\n'
    lines = text.splitlines()
    assert lines[key_line(text, "tag[1] (B).type")] == 'type = "int16"'
    assert lines[key_line(text, "commands.approval_expiry_s")] == "approval_expiry_s = 10"
    assert lines[key_line(text, "tag[1] (B).units")] == "[[tag]]"  # absent key: its entry
    assert key_line(text, "(TOML syntax)", "Invalid (at line 9, column 2)") == 8
