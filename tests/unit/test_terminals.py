"""Terminal entries in plant.toml and the terminal check (SUP-9): configuration errors name
file, key path and reason; commands are refused from unknown terminals, other sources, other
areas and actions, and from anywhere but the session's own terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from custos_testkit import write_config

from hmi.core.config import load_config
from hmi.core.errors import ConfigError
from hmi.core.records import Origin
from hmi.core.terminals import TerminalConfig, TerminalRefused, check_terminal

PANEL = TerminalConfig(
    id="T-PANEL",
    areas=["imaging"],
    actions=["write_setpoint"],
    sources=["local:*", "ssh:10.0.0.*"],
)
DESK = TerminalConfig(id="T-DESK", areas=["*"], actions=["*"], sources=["local:qa@*"])


def test_terminals_load_with_commands_defaults(tmp_path: Path) -> None:
    plant = (
        '[plant]\nname = "t"\n[[terminal]]\nid = "T-1"\nareas = ["*"]\nactions = ["*"]\n'
        'sources = ["local:*"]\n[commands]\napproval_expiry_s = 600\n'
    )
    config = load_config(write_config(tmp_path / "c", plant=plant))
    assert [t.id for t in config.terminals] == ["T-1"]
    assert config.commands.approval_expiry_s == 600
    assert config.commands.esign["write_setpoint"] == "single"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('id = "T 1"', "terminal.0.id"),
        ('id = "T-1"\nsources = ["10.0.0.1"]', "must be kind:address"),
        ('id = "T-1"\nactions = ["fly"]', "unknown action 'fly'"),
        ('id = "T-1"\ncolour = "red"', "terminal.0.colour"),
    ],
)
def test_bad_terminal_entries_name_file_key_and_reason(tmp_path: Path, entry: str, says: str):
    directory = write_config(tmp_path / "c", plant=f"[[terminal]]\n{entry}\n")
    with pytest.raises(ConfigError) as err:
        load_config(directory)
    assert "plant.toml" in err.value.message and says in err.value.message


def test_a_terminal_listed_twice_is_refused(tmp_path: Path) -> None:
    twice = '[[terminal]]\nid = "T-1"\n[[terminal]]\nid = "T-1"\n'
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(write_config(tmp_path / "c", plant=twice))


def test_the_check_allows_only_what_the_terminal_allows() -> None:
    ssh = Origin("T-PANEL", "ssh:10.0.0.5 (olga)")
    assert check_terminal([PANEL], ssh, ssh, "write_setpoint", "imaging") is PANEL
    cases = [
        (Origin("T-OTHER", "local:x"), "write_setpoint", "imaging", "not a configured terminal"),
        (Origin("T-PANEL", "ssh:192.168.0.9 (olga)"), "write_setpoint", "imaging", "from"),
        (ssh, "operate_equipment", "imaging", "not allowed from terminal T-PANEL"),
        (ssh, "write_setpoint", "bioreactor", "Area 'bioreactor'"),
    ]
    for origin, action, area, says in cases:
        with pytest.raises(TerminalRefused, match=says):
            check_terminal([PANEL, DESK], origin, origin, action, area)


def test_a_session_is_bound_to_where_it_started() -> None:
    here = Origin("T-DESK", "local:qa@host")
    there = Origin("T-PANEL", "local:qa@host")
    with pytest.raises(TerminalRefused, match="session was started at terminal T-DESK"):
        check_terminal([PANEL, DESK], here, there, "write_setpoint", "imaging")
    assert check_terminal([PANEL, DESK], here, here, "query_records", None) is DESK
