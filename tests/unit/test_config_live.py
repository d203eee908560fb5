"""Which parts of an approved version a running system takes at once (SUP-12): decided
from the running and the approved configuration alone, on the demo plant's files."""

from __future__ import annotations

import shutil
from pathlib import Path

from custos_testkit import DEMO_CONFIG

from hmi.core.config import PlantConfig, load_config
from hmi.core.config_live import plan_apply

RUNNING = load_config(DEMO_CONFIG)


def approved(tmp_path: Path, name: str, old: str, new: str) -> PlantConfig:
    target = tmp_path / "config"
    if not target.exists():
        shutil.copytree(DEMO_CONFIG, target)
    text = (target / name).read_text()
    assert old in text
    (target / name).write_text(text.replace(old, new, 1))
    return load_config(target)


def test_tag_fields_no_driver_uses_apply_at_once(tmp_path: Path) -> None:
    config = approved(tmp_path, "tags.toml", "high = 45.0", "high = 38.0")
    plan = plan_apply(["tags.toml"], RUNNING, config, procedures=True)
    assert (plan.tags, plan.waiting) == (True, ())


def test_a_tag_scanned_differently_rebuilds_the_drivers_only_in_a_quiet_plant(
    tmp_path: Path,
) -> None:
    approved(tmp_path, "tags.toml", "high = 45.0", "high = 38.0")
    config = approved(tmp_path, "tags.toml", 'address = "hr:0"', 'address = "hr:40"')
    changed = ["procedures/bioreactor_startup.toml", "tags.toml"]
    plan = plan_apply(changed, RUNNING, config, procedures=True, busy="a procedure run is open")
    assert (plan.tags, plan.rescan, plan.procedures) == (False, False, False)
    assert plan.waiting == ("procedures/bioreactor_startup.toml", "tags.toml")
    assert plan.held == "a procedure run is open"
    quiet = plan_apply(changed, RUNNING, config, procedures=True)
    assert (quiet.rescan, quiet.procedures, quiet.waiting) == (True, True, ())
    with_plant = plan_apply([*changed, "plant.toml"], RUNNING, config, procedures=True)
    assert not with_plant.rescan and "tags.toml" in with_plant.waiting


def test_alarms_apply_unless_they_name_a_tag_the_plant_does_not_scan(tmp_path: Path) -> None:
    config = approved(tmp_path, "alarms.toml", "h = 39.0", "h = 38.0")
    plan = plan_apply(["alarms.toml", "devices.toml"], RUNNING, config, procedures=True, busy="x")
    assert (plan.alarms, plan.waiting) == (True, ("devices.toml",))
    fewer = RUNNING.model_copy(
        update={"tags": [t for t in RUNNING.tags if t.name != "BR101.ESTOP"]}
    )
    plan = plan_apply(["alarms.toml"], fewer, config, procedures=True)
    assert (plan.alarms, plan.waiting) == (False, ("alarms.toml",))


def test_procedures_wait_without_a_sequencer() -> None:
    plan = plan_apply(["procedures/x.toml"], RUNNING, RUNNING, procedures=False)
    assert (plan.procedures, plan.waiting) == (False, ("procedures/x.toml",))
