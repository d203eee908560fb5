"""Accounts and configuration files through the Terminal API on the running runtime: every
administrative act signed, refusals recorded before they are shown, temporary passwords
shown once and never recorded, configuration changes checked at the key and proposed
as signed versions without being applied (11.300, PWD-4, SUP-9, issue 5, SUP-12)."""

from __future__ import annotations

import hashlib
import json

import pytest
from custos_plant import CONSOLE, IMAGING, QA_DESK, ApiPlant, signed
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD, PLANT_PASSWORD

from hmi.core.api import Credentials
from hmi.core.errors import AuthenticationError, HmiError, PasswordChangeRequired
from hmi.core.identity import Session

pytestmark = pytest.mark.timeout(120)

AS_ADMIN = Credentials(ADMIN_PASSWORD, ADMIN_ID)
ENGINEER_PASSWORD = "Engineer9pass"


def audit(plant: ApiPlant, action: str, outcome: str) -> list[tuple[object, ...]]:
    return plant.query(
        "SELECT actor_id, terminal_id, target, reason, signature_ids, detail, new_value "
        "FROM audit_trail WHERE action = ? AND outcome = ? ORDER BY seq",
        [action, outcome],
    )


async def admin_session(plant: ApiPlant, origin=CONSOLE) -> Session:
    return await plant.api.login(ADMIN_ID, ADMIN_PASSWORD, origin)


async def new_engineer(plant: ApiPlant, admin: Session) -> Session:
    desk = plant.api.admin
    assert desk is not None
    temporary = await desk.add_user(
        admin, CONSOLE, "eng1", "Erin Engineer", ("engineer",), "new engineer", AS_ADMIN
    )
    first = await plant.api.login("eng1", temporary, CONSOLE)
    await plant.api.change_password(first, temporary, ENGINEER_PASSWORD)
    await plant.api.logout(first)
    return await plant.api.login("eng1", ENGINEER_PASSWORD, CONSOLE)


async def test_accounts_are_administered_from_the_terminal(api_plant: ApiPlant) -> None:
    plant, api = api_plant, api_plant.api
    desk = api.admin
    assert desk is not None
    admin = await admin_session(plant)
    views = {v.user_id: v for v in await desk.users(admin)}
    assert views["op1"].state == "active" and views["op1"].roles == ("operator",)
    assert not any("hash" in f for f in type(views["op1"]).__dataclass_fields__)

    # Added with a temporary password that works once and must be changed first.
    temporary = await desk.add_user(
        admin, CONSOLE, "eng1", "Erin Engineer", ("engineer",), "new engineer", AS_ADMIN
    )
    first = await api.login("eng1", temporary, CONSOLE)
    with pytest.raises(PasswordChangeRequired):
        api.read_tags(first, ["BR101.TEMP_SP"])
    await api.change_password(first, temporary, ENGINEER_PASSWORD)
    with pytest.raises(AuthenticationError):
        await api.login("eng1", temporary, CONSOLE)
    await api.login("eng1", ENGINEER_PASSWORD, CONSOLE)

    # Reset: the old password stops working; the new temporary one must be changed.
    reset = await desk.reset_password(admin, CONSOLE, "eng1", "forgotten", AS_ADMIN)
    assert reset != temporary
    with pytest.raises(AuthenticationError):
        await api.login("eng1", ENGINEER_PASSWORD, CONSOLE)
    assert (await api.login("eng1", reset, CONSOLE)).user.must_change_password

    view = await desk.set_roles(
        admin, CONSOLE, "eng1", ("engineer", "supervisor"), "covers nights", AS_ADMIN
    )
    assert view.roles == ("engineer", "supervisor")

    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await api.login("op2", "not-the-password1", CONSOLE)
    assert {v.user_id: v for v in await desk.users(admin)}["op2"].state == "locked"
    assert (await desk.unlock(admin, CONSOLE, "op2", "identity checked", AS_ADMIN)).state == (
        "active"
    )
    await api.login("op2", PLANT_PASSWORD, CONSOLE)

    gone = await desk.deactivate(admin, CONSOLE, "eng1", "left the site", AS_ADMIN)
    assert gone.state == "deactivated" and gone.deactivated_at is not None
    with pytest.raises(AuthenticationError):
        await api.login("eng1", reset, CONSOLE)

    # Each act is signed by the administrator; no temporary password is ever recorded.
    for action in ("add_user", "reset_password", "set_roles", "unlock_user", "deactivate_user"):
        (actor, terminal, target, _, signatures, _, _) = audit(plant, action, "done")[-1]
        assert (actor, terminal) == (ADMIN_ID, "T-CONSOLE-1") and signatures, action
        assert target == ("user:op2" if action == "unlock_user" else "user:eng1"), action
    everything = str(plant.query("SELECT * FROM audit_trail")) + str(
        plant.query("SELECT * FROM security_events")
    )
    assert temporary not in everything and reset not in everything


async def test_administration_is_refused_and_recorded(api_plant: ApiPlant) -> None:
    plant, api = api_plant, api_plant.api
    desk = api.admin
    assert desk is not None
    op = await plant.login("op1")
    with pytest.raises(HmiError, match="may not administer users"):
        await desk.add_user(op, CONSOLE, "x1", "Xavier X", ("operator",), "try", signed("op1"))
    with pytest.raises(HmiError):
        await desk.users(op)

    # The QA desk does not allow administration; a session cannot be carried elsewhere.
    at_qa = await admin_session(plant, QA_DESK)
    with pytest.raises(HmiError, match="not allowed from terminal T-QA-1"):
        await desk.unlock(at_qa, QA_DESK, "op1", "try", AS_ADMIN)
    admin = await admin_session(plant)
    with pytest.raises(HmiError, match="Log in at the terminal you are using"):
        await desk.deactivate(admin, IMAGING, "op1", "try", AS_ADMIN)
    with pytest.raises(HmiError):
        await desk.deactivate(admin, CONSOLE, "op1", "try", Credentials("wrong-pass1", ADMIN_ID))
    with pytest.raises(HmiError, match="cannot deactivate their own"):
        await desk.deactivate(admin, CONSOLE, ADMIN_ID, "try", AS_ADMIN)

    assert [r[:3] for r in audit(plant, "add_user", "refused")] == [
        ("op1", "T-CONSOLE-1", "user:x1")
    ]
    assert [r[:3] for r in audit(plant, "unlock_user", "refused")] == [
        (ADMIN_ID, "T-QA-1", "user:op1")
    ]
    assert [r[1:3] for r in audit(plant, "deactivate_user", "refused")] == [
        ("T-IMAGING-1", "user:op1"),
        ("T-CONSOLE-1", "user:op1"),
        ("T-CONSOLE-1", f"user:{ADMIN_ID}"),
    ]
    assert [v.state for v in await desk.users(admin) if v.user_id == "op1"] == ["active"]


async def test_configuration_is_checked_diffed_and_proposed_not_applied(
    api_plant: ApiPlant,
) -> None:
    plant, api = api_plant, api_plant.api
    desk = api.config
    assert desk is not None and desk.directory is not None
    eng = await new_engineer(plant, await admin_session(plant))
    files = {f.name: f for f in desk.files(eng)}
    assert {"plant.toml", "tags.toml", "procedures/bioreactor_startup.toml"} <= set(files)
    tags = files["tags.toml"].text
    assert tags == (desk.directory / "tags.toml").read_text()

    broken = tags.replace('type = "bool"', 'type = "boool"', 1)
    checked = await desk.check(eng, "tags.toml", broken)
    assert not checked.ok
    [problem] = checked.problems
    assert (problem.file, problem.key) == ("tags.toml", "tag[0] (BR101.FEED_PUMP).type")
    assert "Input should be 'bool'" in problem.message

    # A tag naming a device that does not exist: found across files, still at the key.
    elsewhere = tags.replace('device = "PLC1"', 'device = "PLC9"', 1)
    [problem] = (await desk.check(eng, "tags.toml", elsewhere)).problems
    assert problem.file == "tags.toml" and problem.key.startswith("tag[0] (BR101.FEED_PUMP)")
    assert "PLC9" in problem.message
    [syntax] = (await desk.check(eng, "tags.toml", tags + "\n[[tag]\n")).problems
    assert syntax.key == "(TOML syntax)"
    with pytest.raises(HmiError, match="not a configuration file"):
        await desk.check(eng, "../security.toml", "")

    changed = tags.replace('"Feed pump run command"', '"Feed pump run (P-101)"')
    assert (await desk.check(eng, "tags.toml", changed)).ok
    diff = desk.diff(eng, "tags.toml", changed)
    assert '-description = "Feed pump run command"\n' in diff.diff
    assert '+description = "Feed pump run (P-101)"\n' in diff.diff
    assert diff.sha256 == hashlib.sha256(diff.diff.encode()).hexdigest()

    with pytest.raises(HmiError, match="problem"):
        await desk.submit(eng, CONSOLE, "tags.toml", broken, "fix type", signed("eng1"))
    op = await plant.login("op1")
    with pytest.raises(HmiError, match="may not edit configuration"):
        await desk.submit(op, CONSOLE, "tags.toml", changed, "rename", signed("op1"))
    with pytest.raises(HmiError, match="not the one shown"):
        await desk.submit(
            eng, CONSOLE, "tags.toml", changed, "rename", signed("eng1"), shown="0" * 64
        )
    assert [r[0] for r in audit(plant, "config_change_requested", "refused")] == [
        "eng1",
        "op1",
        "eng1",
    ]

    request = await desk.submit(
        eng,
        CONSOLE,
        "tags.toml",
        changed,
        "P&ID tag number",
        Credentials(ENGINEER_PASSWORD, "eng1"),
        shown=diff.sha256,
    )
    assert request.diff_sha256 == diff.sha256 and request.text_kept
    assert (request.version, request.state, request.needs) == (2, "proposed", ("qa",))
    [(actor, _, target, reason, signature_id, _detail, new_value)] = audit(
        plant, "config_version_proposed", "done"
    )
    assert (actor, target, reason) == ("eng1", "config:version 2", "P&ID tag number")
    assert f"diff sha256:{diff.sha256}" in str(new_value)
    [(files_json, changed_files)] = plant.query(
        "SELECT files_json, changed_files FROM config_versions WHERE event = 'proposed'"
    )
    assert json.loads(files_json)["tags.toml"] == changed and changed_files == "tags.toml"
    [(signer, meaning)] = plant.query(
        "SELECT signer_id, meaning FROM esignatures WHERE signature_id = ?", [signature_id]
    )
    assert (signer, meaning) == ("eng1", "authored")

    # Nothing applied: the file, the approved text and the running tag are as they were.
    assert (desk.directory / "tags.toml").read_text() == tags
    assert {f.name: f.text for f in desk.files(eng)}["tags.toml"] == tags
    assert plant.runtime.services is not None
    feed = next(t for t in plant.runtime.services.config.tags if t.name == "BR101.FEED_PUMP")
    assert feed.description == "Feed pump run command"
