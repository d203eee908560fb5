"""Change control in a running plant (SUP-12): an engineer proposes at the terminal, QA
approves at the QA desk; a procedure change is reloaded in place, a change the running
drivers cannot take waits for the restart with a system alarm saying so; the next start
runs the approved version (what else applies at once: test_change_control_live.py)."""

from __future__ import annotations

import pytest
from custos_plant import CONSOLE, QA_DESK, ApiPlant, signed
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD, PLANT_PASSWORD

from hmi.core.api import Credentials, SetpointRequest
from hmi.core.errors import HmiError
from hmi.core.identity import Session
from hmi.runtime import Runtime

pytestmark = pytest.mark.timeout(120)

PROCEDURE = "procedures/bioreactor_startup.toml"


async def engineer(plant: ApiPlant) -> Session:
    desk = plant.api.admin
    assert desk is not None
    admin = await plant.api.login(ADMIN_ID, ADMIN_PASSWORD, CONSOLE)
    temporary = await desk.add_user(
        admin,
        CONSOLE,
        "eng1",
        "Erin Engineer",
        ("engineer",),
        "new engineer",
        Credentials(ADMIN_PASSWORD, ADMIN_ID),
    )
    first = await plant.api.login("eng1", temporary, CONSOLE)
    await plant.api.change_password(first, temporary, PLANT_PASSWORD)
    await plant.api.logout(first)
    return await plant.login("eng1")


async def test_an_approved_procedure_change_is_reloaded_in_place(api_plant: ApiPlant) -> None:
    plant, api = api_plant, api_plant.api
    desk = api.config
    assert desk is not None and desk.directory is not None and api.procedures is not None
    eng = await engineer(plant)
    text = {f.name: f.text for f in desk.files(eng)}[PROCEDURE]
    changed = text.replace('title = "Bioreactor start-up"', 'title = "Bioreactor start-up (v2)"')
    request = await desk.submit(eng, CONSOLE, PROCEDURE, changed, "clearer title", signed("eng1"))
    assert (request.state, request.needs) == ("proposed", ("qa",))
    qa = await plant.login("qa1", QA_DESK)
    versions = await desk.versions(qa)
    assert [(v.version, v.state) for v in versions] == [(2, "proposed"), (1, "approved")]

    done = await desk.approve(qa, QA_DESK, request.version, "reviewed", signed("qa1"))
    assert done.state == "approved" and done.effect.startswith("Applied now")
    assert (desk.directory / PROCEDURE).read_text() == changed
    titles = [p.title for p in api.procedures.procedures(qa)]
    assert "Bioreactor start-up (v2)" in titles
    [(detail,)] = plant.query(
        "SELECT detail FROM audit_trail WHERE action = 'config_version_applied'"
    )
    assert "procedures reloaded" in detail


async def test_other_changes_take_effect_at_restart(api_plant: ApiPlant) -> None:
    plant, api = api_plant, api_plant.api
    desk = api.config
    assert desk is not None and desk.directory is not None
    eng = await engineer(plant)
    tags = {f.name: f.text for f in desk.files(eng)}["tags.toml"]
    feed_pump = 'scan_class = "fast"\ndescription = "Feed pump run command"'
    assert feed_pump in tags
    # A new scan class changes how the driver polls, and a command waiting for approval
    # holds the running tags: the whole file waits for the restart.
    changed = tags.replace(
        feed_pump, 'scan_class = "normal"\ndescription = "Feed pump run (P-101)"'
    )
    op = await plant.login("op1")
    asked = await api.request_write(
        op, CONSOLE, SetpointRequest("BR101.TEMP_SP", 37.5, "warm up", signed("op1"))
    )
    assert asked.outcome == "pending"
    request = await desk.submit(eng, CONSOLE, "tags.toml", changed, "P&ID", signed("eng1"))
    qa = await plant.login("qa1", QA_DESK)
    with pytest.raises(HmiError, match="may not approve configuration"):
        await desk.approve(eng, CONSOLE, request.version, "mine", signed("eng1"))
    done = await desk.approve(qa, QA_DESK, request.version, "reviewed", signed("qa1"))
    assert done.effect == (
        "It takes effect at restart: tags.toml (a command is waiting for approval)."
    )
    assert plant.runtime.alarms is not None
    active = {a.alarm_id: a.message for a in plant.runtime.alarms.active()}
    assert "version 2 is approved" in active["SYSTEM.config_restart_needed"]
    assert "waiting for a restart: tags.toml" in active["SYSTEM.config_restart_needed"]
    services = plant.runtime.services
    assert services is not None
    feed = next(t for t in services.config.tags if t.name == "BR101.FEED_PUMP")
    assert feed.description == "Feed pump run command"  # the running plant is unchanged

    # The next start runs the approved version: disk and approved agree.
    data, config_dir = plant.runtime.data, plant.runtime.config_dir
    await plant.runtime.stop()
    async with Runtime(data, config_dir, environ=plant.runtime.environ) as again:
        assert again.services is not None and again.config_blocked is None
        feed = next(t for t in again.services.config.tags if t.name == "BR101.FEED_PUMP")
        assert feed.description == "Feed pump run (P-101)" and feed.scan_class == "normal"
