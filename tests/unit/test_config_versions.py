"""Configuration versions without a database: digests, key differences, who must approve,
and the state folded from the chained events (SUP-12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hmi.core.change_policy import ChangeControlPolicy
from hmi.core.config_apply import file_set_for, write_set
from hmi.core.config_check import read_files
from hmi.core.config_versions import (
    canonical,
    current_version,
    describe_differences,
    diff_sets,
    fold,
    key_changes,
    policy_of,
    required_approvals,
    set_digest,
)
from hmi.core.errors import ConfigError
from hmi.core.records import ConfigVersionEntry, Origin

O = Origin("T", "local:test")  # noqa: E741
BASE = {"plant.toml": '[plant]\nname = "A"\n', "security.toml": "lockout_attempts = 3\n"}


def test_the_digest_is_of_the_canonical_set_whatever_the_order() -> None:
    other = dict(reversed(list(BASE.items())))
    assert canonical(other) == canonical(BASE) and set_digest(other) == set_digest(BASE)
    assert set_digest({**BASE, "tags.toml": ""}) != set_digest(BASE)


def test_key_changes_name_added_removed_and_changed_top_level_keys() -> None:
    old = '[plant]\nname = "A"\n[clock]\nmax_drift_s = 2\n'
    new = '[plant]\nname = "B"\n[storage]\nmin_free_mb = 1\n'
    assert key_changes(old, new) == ["+storage", "-clock", "~plant"]
    assert key_changes(old, old + "# note\n") == ["(whitespace or comments only)"]
    assert key_changes(old, "[broken") == ["(not valid TOML)"]
    lines = describe_differences(BASE, {"plant.toml": new, "alarms.toml": ""})
    assert lines == [
        "alarms.toml: not in the approved version (added on disk)",
        "plant.toml: keys +storage, ~plant",
        "security.toml: missing on disk (the approved version has it)",
    ]


@pytest.mark.parametrize(
    ("file", "text", "needs"),
    [
        ("plant.toml", '[plant]\nname = "B"\n', ()),
        ("tags.toml", "", ("qa",)),
        ("alarms.toml", "", ("qa",)),
        ("procedures/p.toml", "", ("qa",)),
        ("devices.toml", "", ()),
        ("security.toml", "lockout_attempts = 4\n", ("qa", "admin")),
        ("plant.toml", '[plant]\nname = "A"\n[commands]\nreadback_s = 5\n', ("qa", "admin")),
        (
            "plant.toml",
            '[plant]\nname = "A"\n[change_control]\nqa_approval_for = []\n',
            ("qa", "admin"),
        ),
    ],
)
def test_who_approves_follows_the_policy(file: str, text: str, needs: tuple[str, ...]) -> None:
    assert required_approvals(BASE, {**BASE, file: text}, policy_of(BASE)) == needs


def test_a_plant_policy_widens_qa_review() -> None:
    policy = ChangeControlPolicy(qa_approval_for=["devices"])
    assert required_approvals(BASE, {**BASE, "devices.toml": ""}, policy) == ("qa",)
    assert required_approvals(BASE, {**BASE, "tags.toml": ""}, policy) == ()
    with pytest.raises(ConfigError, match="change_control"):
        policy_of({"plant.toml": '[change_control]\nqa_approval_for = ["nothing"]\n'})


def entry(version: int, event: str, seq: int, **kw: object) -> ConfigVersionEntry:
    return ConfigVersionEntry(version, event, "u", "U", O, "sha", seq=seq, **kw)  # type: ignore[arg-type]


def test_states_are_folded_from_events() -> None:
    events = [
        entry(1, "baseline", 1, files_json=canonical(BASE)),
        entry(2, "proposed", 2, base_version=1, required="qa,admin"),
        entry(2, "signed", 3, actor_role="qa"),
        entry(3, "proposed", 4, base_version=1, required=""),
        entry(3, "approved", 5),
        entry(4, "proposed", 6, base_version=3, required="qa"),
        entry(5, "proposed", 7, base_version=3, required="qa"),
        entry(5, "rejected", 8),
    ]
    versions = fold(events)
    assert [v.state for v in versions] == [
        "superseded",
        "stale",
        "approved",
        "proposed",
        "rejected",
    ]
    assert versions[1].missing == ("admin",)
    current = current_version(versions)
    assert current is not None and current.version == 3
    assert versions[0].files == BASE
    assert current_version(fold([])) is None


def test_an_approved_set_is_written_and_dropped_files_removed(tmp_path: Path) -> None:
    (tmp_path / "procedures").mkdir()
    old = {**BASE, "procedures/p.toml": 'id = "p"\n'}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    new = file_set_for(old, "procedures/p.toml", "")
    new = file_set_for(new, "plant.toml", '[plant]\nname = "B"\n')
    write_set(tmp_path, old, new)
    assert read_files(tmp_path) == new
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temporary files left
    assert '+name = "B"' in diff_sets(old, new)
