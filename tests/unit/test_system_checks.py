"""System alarms for clock drift, free disk space and lockouts, on virtual time (SUP-6)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from custos_testkit import write_config

from hmi.core.alarms import AlarmEngine, AlarmState, AlarmTransition
from hmi.core.clock import FakeClock
from hmi.core.config import ClockCheck, StorageCheck, json_schema, load_config
from hmi.core.errors import ConfigError
from hmi.core.records import Origin, Record
from hmi.core.system_checks import MB, SystemChecks, drift_s

S = AlarmState


class ListJournal:
    def __init__(self) -> None:
        self.rows: list[AlarmTransition] = []

    def record_soon(self, transitions: Sequence[AlarmTransition]) -> None:
        self.rows.extend(transitions)

    async def commit(
        self, transitions: Sequence[AlarmTransition], records: Sequence[Record]
    ) -> None:
        self.rows.extend(transitions)


def make(**limits: float) -> tuple[SystemChecks, AlarmEngine, FakeClock, ListJournal]:
    clock, journal = FakeClock(), ListJournal()
    engine = AlarmEngine(clock=clock, journal=journal)
    checks = SystemChecks(
        engine,
        ClockCheck(max_drift_s=limits.get("max_drift_s", 2.0)),
        StorageCheck(min_free_mb=int(limits.get("min_free_mb", 500))),
    )
    return checks, engine, clock, journal


def test_drift_is_measured_against_the_midpoint_of_the_request() -> None:
    clock = FakeClock()
    sent = clock.now()
    received = sent + timedelta(seconds=4)
    assert drift_s(sent + timedelta(seconds=2), sent, received) == 0.0
    assert drift_s(sent + timedelta(seconds=5), sent, received) == 3.0
    assert drift_s(sent - timedelta(seconds=1), sent, received) == -3.0


def test_clock_drift_past_the_limit_raises_and_within_clears() -> None:
    checks, engine, clock, journal = make(max_drift_s=2.0)
    now = clock.now()
    assert checks.device_clock("MIC1", now + timedelta(seconds=1.5), now, now) == 1.5
    assert "SYSTEM.clock_drift.MIC1" not in engine.alarms  # never raised, nothing journaled
    checks.device_clock("MIC1", now - timedelta(seconds=7.25), now, now)
    alarm = engine.get("SYSTEM.clock_drift.MIC1")
    assert (alarm.state, alarm.priority, alarm.tag) == (
        S.UNACK_ACTIVE,
        2,
        "system:clock_drift.MIC1",
    )
    assert "MIC1" in alarm.message and "7.2 s behind" in alarm.message
    checks.device_clock("MIC2", now + timedelta(seconds=30), now, now)
    assert "30.0 s ahead" in engine.get("SYSTEM.clock_drift.MIC2").message
    checks.device_clock("MIC1", now + timedelta(seconds=0.5), now, now)
    assert alarm.state is S.RTN_UNACK
    assert engine.get("SYSTEM.clock_drift.MIC2").state is S.UNACK_ACTIVE  # each device its own
    assert [(t.alarm_id, t.event, t.actor.actor_id) for t in journal.rows] == [
        ("SYSTEM.clock_drift.MIC1", "activate", "system"),
        ("SYSTEM.clock_drift.MIC2", "activate", "system"),
        ("SYSTEM.clock_drift.MIC1", "clear", "system"),
    ]


def test_free_space_below_the_minimum_raises_and_above_clears() -> None:
    checks, engine, _, journal = make(min_free_mb=500)
    checks.free_space(501 * MB, "/var/custos")
    assert "SYSTEM.disk_nearly_full" not in engine.alarms
    checks.free_space(499 * MB, "/var/custos")
    alarm = engine.get("SYSTEM.disk_nearly_full")
    assert (alarm.state, alarm.priority) == (S.UNACK_ACTIVE, 2)
    assert "499 MB free" in alarm.message and "/var/custos" in alarm.message
    checks.free_space(800 * MB, "/var/custos")
    assert alarm.state is S.RTN_UNACK
    assert [t.event for t in journal.rows] == ["activate", "clear"]


def test_a_minimum_of_zero_turns_the_disk_check_off() -> None:
    checks, engine, _, _ = make(min_free_mb=0)
    checks.free_space(0, "/var/custos")
    assert "SYSTEM.disk_nearly_full" not in engine.alarms


def test_a_lockout_is_an_event_alarm_naming_user_and_terminal_only() -> None:
    checks, engine, _, journal = make()
    checks.lockout("olga", Origin("T-CONSOLE-1", "10.0.0.7"))
    alarm = engine.get("SYSTEM.account_lockout.olga")
    assert alarm.state is S.RTN_UNACK  # waits for acknowledgement, not for the unlock
    assert alarm.message == (
        "Account olga locked after repeated failed attempts at terminal T-CONSOLE-1"
    )
    assert [(t.event, t.to_state) for t in journal.rows] == [
        ("activate", S.UNACK_ACTIVE),
        ("clear", S.RTN_UNACK),
    ]
    checks.lockout("olga", Origin("T-CONSOLE-2", "10.0.0.8"))
    assert alarm.state is S.RTN_UNACK and "T-CONSOLE-2" in alarm.message
    assert len(journal.rows) == 4


def test_clock_and_storage_sections_of_plant_toml(tmp_path: Path) -> None:
    directory = write_config(
        tmp_path / "c",
        plant="[clock]\nmax_drift_s = 0.5\ncheck_every_s = 30\n[storage]\nmin_free_mb = 2048\n",
    )
    config = load_config(directory)
    assert config.clock == ClockCheck(max_drift_s=0.5, check_every_s=30)
    assert config.storage == StorageCheck(min_free_mb=2048, check_every_s=60)
    assert load_config(write_config(tmp_path / "d")).clock.max_drift_s == 2.0
    write_config(tmp_path / "e", plant="[clock]\nmax_drift_s = 0\n")
    with pytest.raises(ConfigError, match=r"plant\.toml: clock\.max_drift_s"):
        load_config(tmp_path / "e")
    plant_schema = json_schema()["plant.toml"]
    assert {"clock", "storage"} <= set(plant_schema["properties"])
