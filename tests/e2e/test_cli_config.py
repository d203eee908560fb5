"""`hmi config`: offline check and schema, then change control from the command line:
diff, submit, approve by QA and an administrator, history, rollback, reject (SUP-12)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
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

from hmi.bootstrap import open_services
from hmi.cli import main
from hmi.core.useradmin import Credentials

pytestmark = pytest.mark.timeout(120)


def hmi(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


async def _setup(data: Path, cfg: Path) -> None:
    await init_plant_data(data, cfg, ORIGIN)
    services = open_services(data, cfg, origin=ORIGIN)
    try:
        admin = await services.identity.login(ADMIN_ID, ADMIN_PASSWORD, ORIGIN)
        temp = await services.admin.add_user(
            admin,
            Credentials(ADMIN_PASSWORD, ADMIN_ID),
            "eng1",
            "Erin Engineer",
            ("engineer",),
            "test",
        )
        await services.identity.logout(admin)
        await activate(services, "eng1", temp, PLANT_PASSWORD)
    finally:
        services.close()


@pytest.fixture
def plant(tmp_path: Path) -> tuple[Path, Path]:
    cfg = write_config(tmp_path / "cfg")
    data = tmp_path / "data"
    asyncio.run(_setup(data, cfg))
    return data, cfg


def signed(plant: tuple[Path, Path], user: str, *args: str):
    data, cfg = plant
    password = ADMIN_PASSWORD if user == ADMIN_ID else PLANT_PASSWORD
    return hmi(
        "config",
        *args,
        "--data",
        str(data),
        "--config",
        str(cfg),
        "--user",
        user,
        "--password-stdin",
        stdin=password + "\n",
    )


def test_check_and_schema_need_no_data(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg")
    r = hmi("config", "check", "--config", str(cfg))
    assert r.exit_code == 0 and "valid (Test plant)" in r.output
    (cfg / "security.toml").write_text("lockout_attempts = 99\n")
    r = hmi("config", "check", str(cfg))
    assert r.exit_code == 1
    assert f"{cfg}/security.toml: lockout_attempts:" in r.output
    r = hmi("config", "schema")
    schema = json.loads(r.output)
    assert "change_control" in schema["plant.toml"]["properties"]


def test_change_control_from_the_command_line(plant: tuple[Path, Path]) -> None:
    data, cfg = plant
    where = ["--data", str(data), "--config", str(cfg)]
    assert "No differences." in hmi("config", "diff", *where).output
    original = (cfg / "security.toml").read_text()
    (cfg / "security.toml").write_text(CHEAP_SECURITY.replace("= 3\n[argon2]", "= 4\n[argon2]"))
    r = hmi("config", "diff", *where)
    assert "security.toml: keys ~lockout_attempts" in r.output
    assert "+lockout_attempts = 4" in r.output

    r = signed(plant, "eng1", "submit", "--reason", "four attempts")
    assert r.exit_code == 0, r.output
    assert "Version 2 is proposed." in r.output
    assert "Still needs approval by: qa, admin." in r.output
    assert "Erin Engineer (eng1)" in r.output and "authored" in r.output

    r = signed(plant, "op1", "approve", "2")
    assert r.exit_code == 1 and "may not approve configuration" in r.output
    r = signed(plant, "qa1", "approve", "2")
    assert "Still needs approval by: admin." in r.output
    r = signed(plant, ADMIN_ID, "approve", "2", "--reason", "policy review")
    assert r.exit_code == 0 and "Version 2 is approved." in r.output

    r = hmi("config", "history", *where)
    assert r.exit_code == 0
    assert "   2 approved" in r.output and "approved as qa: Quinn Quality (qa1)" in r.output
    assert "   1 superseded" in r.output

    r = signed(plant, "eng1", "rollback", "1", "--reason", "back to three")
    assert "Version 3 is proposed." in r.output
    r = hmi("config", "diff", "3", *where)
    assert "-lockout_attempts = 4" in r.output
    r = signed(plant, "qa1", "reject", "3", "--reason", "four is right")
    assert "Version 3 is rejected." in r.output
    assert (cfg / "security.toml").read_text() != original
    r = hmi("config", "history", *where)
    assert "   3 rejected" in r.output and "restores 1" in r.output


def test_commands_that_write_or_compare_the_directory_need_it(plant: tuple[Path, Path]) -> None:
    data, _ = plant
    r = hmi("config", "diff", "--data", str(data))
    assert r.exit_code == 2 and "--config names the configuration directory" in r.output
    r = hmi("config", "approve", "1", "--data", str(data), "--user", "qa1")
    assert r.exit_code == 2 and "--config names the configuration directory" in r.output
