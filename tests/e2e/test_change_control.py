"""Configuration change control on a real data directory (SUP-12, 11.10(k)): versions,
signatures, approvals by policy, rejection, rollback, stale proposals, and the start-up
comparison of disk with the approved version (refuse, or run with commands blocked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from custos_testkit import (
    ADMIN_ID,
    ADMIN_PASSWORD,
    CHEAP_SECURITY,
    ORIGIN,
    PLANT_PASSWORD,
    activate,
    init_plant_data,
    write_config,
)

from hmi.bootstrap import Services, open_services, unapproved_config
from hmi.core.config_check import read_files
from hmi.core.errors import ConfigError, HmiError
from hmi.core.useradmin import Credentials
from hmi.runtime import Runtime
from hmi.store.anchors import AnchorLog
from hmi.store.db import Store
from hmi.store.verify import verify_records

pytestmark = pytest.mark.timeout(120)

ENGINEER = "eng1"
PLANT = '[plant]\nname = "Test plant"\n'


@pytest.fixture
async def plant(tmp_path: Path):
    cfg = write_config(tmp_path / "cfg")
    data = tmp_path / "data"
    await init_plant_data(data, cfg, ORIGIN)
    services = open_services(data, cfg, origin=ORIGIN)
    admin = await services.identity.login(ADMIN_ID, ADMIN_PASSWORD, ORIGIN)
    temp = await services.admin.add_user(
        admin, Credentials(ADMIN_PASSWORD, ADMIN_ID), ENGINEER, "Erin Engineer", ("engineer",), "t"
    )
    await services.identity.logout(admin)
    await activate(services, ENGINEER, temp, PLANT_PASSWORD)
    try:
        yield services, cfg, data
    finally:
        services.close()


def rows(services: Services, sql: str, params: list[object] | None = None):
    return services.store.query(sql, params)


async def login(services: Services, user: str):
    password = ADMIN_PASSWORD if user == ADMIN_ID else PLANT_PASSWORD
    return await services.identity.login(user, password, ORIGIN)


async def submit(services: Services, files: dict[str, str], reason: str = "change"):
    eng = await login(services, ENGINEER)
    return await services.change.submit(eng, ORIGIN, files, reason, PLANT_PASSWORD, ENGINEER)


async def approve(services: Services, user: str, number: int):
    session = await login(services, user)
    password = ADMIN_PASSWORD if user == ADMIN_ID else PLANT_PASSWORD
    return await services.change.approve(session, ORIGIN, number, "reviewed", password, user)


async def test_init_records_the_configuration_as_version_one(plant) -> None:
    services, cfg, _ = plant
    [v1] = await services.change.versions()
    assert (v1.version, v1.state, v1.baseline) == (1, "approved", True)
    assert v1.files == read_files(cfg) and v1.author_id == ADMIN_ID
    [(event, detail)] = rows(services, "SELECT event, detail FROM config_versions")
    assert event == "baseline" and "installing administrator" in detail
    assert "no signature exists at init" in detail
    assert unapproved_config(services, cfg, ORIGIN) == []


async def test_a_change_outside_the_qa_policy_takes_effect_on_the_authors_signature(
    plant,
) -> None:
    services, cfg, _ = plant
    files = {**read_files(cfg), "plant.toml": '[plant]\nname = "Renamed plant"\n'}
    v2 = await submit(services, files, "new plant name")
    assert (v2.version, v2.state, v2.required, v2.changed) == (2, "approved", (), ("plant.toml",))
    assert v2.signed_now and v2.signed_now[0].endswith("authored")
    # Applied: the directory now holds the approved version.
    assert (cfg / "plant.toml").read_text() == files["plant.toml"]
    [(event, base, diff, sig)] = rows(
        services,
        "SELECT event, base_version, diff, signature_ids FROM config_versions "
        "WHERE version = 2 AND event = 'proposed'",
    )
    assert (event, base) == ("proposed", 1)
    assert '+name = "Renamed plant"\n' in diff
    [(signer, meaning)] = rows(
        services, "SELECT signer_id, meaning FROM esignatures WHERE signature_id = ?", [sig]
    )
    assert (signer, meaning) == (ENGINEER, "authored")
    assert [e for (e,) in rows(services, "SELECT event FROM config_versions ORDER BY seq")] == [
        "baseline",
        "proposed",
        "approved",
    ]


async def test_security_needs_qa_and_an_administrator_besides_the_author(plant) -> None:
    services, cfg, _ = plant
    before = read_files(cfg)
    files = {**before, "security.toml": CHEAP_SECURITY.replace("= 3\n[argon2]", "= 4\n[argon2]")}
    v = await submit(services, files, "four attempts")
    assert (v.state, v.required, v.missing) == ("proposed", ("qa", "admin"), ("qa", "admin"))
    assert read_files(cfg) == before  # nothing applied yet

    with pytest.raises(HmiError, match="may not approve configuration"):
        await approve(services, ENGINEER, v.version)
    v = await approve(services, "qa1", v.version)
    assert (v.state, v.missing) == ("proposed", ("admin",))
    with pytest.raises(HmiError, match="already approved"):
        await approve(services, "qa1", v.version)
    v = await approve(services, ADMIN_ID, v.version)
    assert v.state == "approved" and [a.role for a in v.approvals] == ["qa", "admin"]
    assert read_files(cfg) == files
    refused = rows(
        services,
        "SELECT actor_id FROM audit_trail WHERE action = 'config_version_approved' "
        "AND outcome = 'refused' ORDER BY seq",
    )
    assert refused == [(ENGINEER,), ("qa1",)]
    meanings = rows(
        services,
        "SELECT e.signer_id, e.meaning FROM config_versions c, esignatures e "
        "WHERE c.event = 'signed' AND e.signature_id = c.signature_ids ORDER BY c.seq",
    )
    assert meanings == [("qa1", "approved"), (ADMIN_ID, "approved")]


async def test_the_author_cannot_approve_their_own_change(plant) -> None:
    services, cfg, _ = plant
    # The administrator also edits configuration here: author and approver must differ.
    admin = await login(services, ADMIN_ID)
    roles = ("admin", "engineer")
    await services.admin.set_roles(
        admin, Credentials(ADMIN_PASSWORD, ADMIN_ID), ADMIN_ID, roles, "covers engineering"
    )
    files = {**read_files(cfg), "security.toml": CHEAP_SECURITY + "\n# reviewed\n"}
    admin = await login(services, ADMIN_ID)
    v = await services.change.submit(admin, ORIGIN, files, "note", ADMIN_PASSWORD, ADMIN_ID)
    with pytest.raises(HmiError, match="authored version"):
        await approve(services, ADMIN_ID, v.version)


async def test_records_policy_in_plant_toml_needs_admin_and_qa(plant) -> None:
    services, cfg, _ = plant
    text = PLANT + '[change_control]\nqa_approval_for = ["tags"]\n'
    v = await submit(services, {**read_files(cfg), "plant.toml": text}, "narrow QA review")
    assert v.required == ("qa", "admin")
    v = await submit(services, {**read_files(cfg), "plant.toml": PLANT + "# x\n"}, "note")
    assert v.required == ()  # the rest of plant.toml needs nobody by the default policy


async def test_rejected_and_stale_versions_never_take_effect(plant) -> None:
    services, cfg, _ = plant
    security = {**read_files(cfg), "security.toml": CHEAP_SECURITY + "\n# a\n"}
    rejected = await submit(services, security, "comment")
    qa = await login(services, "qa1")
    out = await services.change.reject(
        qa, ORIGIN, rejected.version, "no reason to change", PLANT_PASSWORD, "qa1"
    )
    assert out.state == "rejected"
    with pytest.raises(HmiError, match="rejected"):
        await approve(services, ADMIN_ID, rejected.version)

    stale = await submit(services, security, "comment again")
    newer = await submit(services, {**read_files(cfg), "plant.toml": PLANT + "# b\n"}, "note")
    assert newer.state == "approved"
    with pytest.raises(HmiError, match="submit the change again"):
        await approve(services, "qa1", stale.version)
    states = {v.version: v.state for v in await services.change.versions()}
    assert states == {1: "superseded", 2: "rejected", 3: "stale", 4: "approved"}
    with pytest.raises(HmiError, match="nothing to submit"):
        await submit(services, read_files(cfg), "same")


async def test_invalid_configuration_is_refused_with_file_and_key(plant) -> None:
    services, cfg, _ = plant
    files = {**read_files(cfg), "security.toml": "lockout_attempts = 99\n"}
    with pytest.raises(ConfigError, match=r"security\.toml: lockout_attempts"):
        await submit(services, files, "too many")
    [(detail,)] = rows(
        services,
        "SELECT detail FROM audit_trail WHERE action = 'config_version_proposed' "
        "AND outcome = 'refused'",
    )
    assert "lockout_attempts" in detail


async def test_rollback_restores_an_earlier_version_through_approval(plant) -> None:
    services, cfg, _ = plant
    v1 = read_files(cfg)
    changed = {**v1, "security.toml": CHEAP_SECURITY + "\n# changed\n"}
    v2 = await submit(services, changed, "change")
    await approve(services, "qa1", v2.version)
    await approve(services, ADMIN_ID, v2.version)
    assert read_files(cfg) == changed

    eng = await login(services, ENGINEER)
    back = await services.change.rollback(eng, ORIGIN, 1, "undo", PLANT_PASSWORD, ENGINEER)
    assert (back.version, back.restores_version, back.state) == (3, 1, "proposed")
    assert read_files(cfg) == changed
    await approve(services, "qa1", back.version)
    done = await approve(services, ADMIN_ID, back.version)
    assert done.state == "approved" and done.files == v1
    assert read_files(cfg) == v1
    [(restores,)] = rows(
        services,
        "SELECT restores_version FROM config_versions WHERE event = 'proposed' AND version = 3",
    )
    assert restores == 1
    with services.store.reader() as cur:
        report = verify_records(
            cur, services.store.data_dir.keys, AnchorLog(services.store.data_dir.anchors)
        )
    assert report.ok, report.problems


async def test_start_refuses_an_unapproved_configuration_naming_files_and_keys(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path / "cfg")
    data = tmp_path / "data"
    await init_plant_data(data, cfg, ORIGIN)
    (cfg / "plant.toml").write_text('[plant]\nname = "Edited"\n[clock]\nmax_drift_s = 5\n')
    (cfg / "devices.toml").write_text("")
    with pytest.raises(ConfigError) as caught:
        async with Runtime(data, cfg):
            pass
    text = str(caught.value)
    assert "plant.toml: keys +clock, ~plant" in text
    assert "devices.toml: not in the approved version" in text
    assert "--allow-unapproved-config" in text
    store = Store.open(data)
    try:
        events = store.query(
            "SELECT event FROM security_events WHERE event LIKE '%unapproved_config'"
        )
    finally:
        store.close()
    assert events == [("start_refused_unapproved_config",)]


async def test_an_allowed_unapproved_start_blocks_every_command_and_raises_an_alarm(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path / "cfg")
    data = tmp_path / "data"
    await init_plant_data(data, cfg, ORIGIN)
    (cfg / "plant.toml").write_text('[plant]\nname = "Edited"\n')
    async with Runtime(data, cfg, allow_unapproved_config=True) as runtime:
        assert runtime.alarms is not None and runtime.api is not None
        active = {a.alarm_id for a in runtime.alarms.active()}
        assert "SYSTEM.config_unapproved" in active
        session = await runtime.api.login("sup1", PLANT_PASSWORD, ORIGIN)
        with pytest.raises(HmiError, match="configuration is not approved"):
            await runtime.api.preview_write(session, ORIGIN, "ANY.TAG", 1.0, "try")
        assert runtime.services is not None
        events = runtime.services.store.query(
            "SELECT event, detail FROM security_events WHERE event = 'started_unapproved_config'"
        )
    assert len(events) == 1 and "plant.toml: keys ~plant" in events[0][1]


async def test_data_without_versions_takes_the_disk_configuration_as_baseline(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path / "cfg")
    Store.create(tmp_path / "data").close()
    services = open_services(tmp_path / "data", cfg, origin=ORIGIN)
    try:
        assert unapproved_config(services, cfg, ORIGIN) == []
        [v1] = await services.change.versions()
        assert v1.state == "approved" and v1.files == read_files(cfg)
        [(detail,)] = services.store.query(
            "SELECT detail FROM security_events WHERE event = 'config_baseline_recorded'"
        )
        assert "baseline version 1" in detail
        (cfg / "plant.toml").write_text(PLANT + "# edited\n")
        assert unapproved_config(services, cfg, ORIGIN) == [
            "plant.toml: keys (whitespace or comments only)"
        ]
        stored = json.loads(services.store.query("SELECT files_json FROM config_versions")[0][0])
        assert stored["plant.toml"] == PLANT
    finally:
        services.close()
