"""The ISA-18.2 state machine on virtual time: every transition, deadband, delays, hiding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from drivers.base import LinkState
from hmi.core.alarm_config import AlarmConfig, Condition
from hmi.core.alarms import Actor, AlarmEngine, AlarmState, AlarmTransition, priority_label
from hmi.core.clock import FakeClock
from hmi.core.config import load_config
from hmi.core.errors import ConfigError, HmiError
from hmi.core.records import Record
from hmi.core.scanner import LinkEvent
from hmi.core.tags import Quality, TagChange

S = AlarmState
OPERATOR = Actor("op1", "Olga Operator", "T-1", "local:test")


class ListJournal:
    def __init__(self) -> None:
        self.rows: list[AlarmTransition] = []

    def record_soon(self, transitions: Sequence[AlarmTransition]) -> None:
        self.rows.extend(transitions)

    async def commit(
        self, transitions: Sequence[AlarmTransition], records: Sequence[Record]
    ) -> None:
        self.rows.extend(transitions)


def make(*configs: AlarmConfig) -> tuple[AlarmEngine, FakeClock, ListJournal]:
    clock, journal = FakeClock(), ListJournal()
    return AlarmEngine(configs, clock=clock, journal=journal), clock, journal


def change(engine: AlarmEngine, tag: str, value: object, quality: Quality = Quality.GOOD) -> None:
    now = engine.clock.now()
    engine.on_change(TagChange(tag, value, quality, now, now, "device:PLC1"))  # type: ignore[arg-type]


TEMP = AlarmConfig(tag="T", hh=42, h=39, l=30, ll=20, deadband=0.5, priority_hh=1, priority=3)


def test_full_cycle_ack_before_return() -> None:
    engine, _, journal = make(TEMP)
    alarm = engine.get("T.H")
    change(engine, "T", 39.5)
    assert alarm.state is S.UNACK_ACTIVE
    engine.acknowledge(alarm, OPERATOR)
    assert alarm.state is S.ACK_ACTIVE
    change(engine, "T", 38.0)
    assert alarm.state is S.NORMAL
    events = [(t.event, t.from_state, t.to_state) for t in journal.rows]
    assert events == [("activate", S.NORMAL, S.UNACK_ACTIVE), ("clear", S.ACK_ACTIVE, S.NORMAL)]


def test_return_before_ack_then_ack_and_reactivation() -> None:
    engine, _, journal = make(TEMP)
    alarm = engine.get("T.L")
    change(engine, "T", 29.0)
    change(engine, "T", 31.0)
    assert alarm.state is S.RTN_UNACK
    change(engine, "T", 29.0)
    assert alarm.state is S.UNACK_ACTIVE
    change(engine, "T", 31.0)
    ack = engine.acknowledge(alarm, OPERATOR)
    assert (ack.from_state, ack.to_state, ack.actor.actor_id) == (S.RTN_UNACK, S.NORMAL, "op1")
    with pytest.raises(HmiError, match="not waiting"):
        engine.acknowledge(alarm, OPERATOR)
    assert [t.value for t in journal.rows] == ["29.0", "31.0", "29.0", "31.0"]


def test_hh_and_h_are_separate_alarms_with_their_priorities() -> None:
    engine, _, journal = make(TEMP)
    change(engine, "T", 43.0)
    assert {t.alarm_id for t in journal.rows} == {"T.HH", "T.H"}
    assert [a.alarm_id for a in engine.active()] == ["T.HH", "T.H"]
    assert engine.get("T.HH").priority_label == "!!!! P1"
    assert engine.get("T.H").priority == 3
    assert [priority_label(p) for p in (1, 2, 3, 4)] == ["!!!! P1", "!!! P2", "!! P3", "! P4"]
    hh = next(t for t in journal.rows if t.alarm_id == "T.HH")
    assert (hh.limit_name, hh.limit_value, hh.priority) == ("HH", "42", 1)


def test_deadband_holds_the_alarm_until_the_value_falls_back() -> None:
    engine, _, _ = make(TEMP)
    alarm = engine.get("T.H")
    change(engine, "T", 39.0)
    assert alarm.active
    change(engine, "T", 38.7)
    assert alarm.state is S.UNACK_ACTIVE
    change(engine, "T", 38.4)
    assert alarm.state is S.RTN_UNACK
    low = engine.get("T.LL")
    change(engine, "T", 19.0)
    change(engine, "T", 20.3)
    assert low.active
    change(engine, "T", 20.6)
    assert not low.active


def test_on_delay_needs_the_condition_to_persist() -> None:
    engine, clock, _ = make(AlarmConfig(tag="T", h=10, on_delay_s=5, off_delay_s=3))
    alarm = engine.get("T.H")
    change(engine, "T", 11.0)
    clock.advance(4)
    engine.tick()
    assert alarm.state is S.NORMAL
    change(engine, "T", 9.0)  # a blip shorter than the delay never alarms
    clock.advance(10)
    engine.tick()
    assert alarm.state is S.NORMAL
    change(engine, "T", 11.0)
    clock.advance(5)
    engine.tick()
    assert alarm.state is S.UNACK_ACTIVE


def test_off_delay_needs_the_return_to_persist() -> None:
    engine, clock, _ = make(AlarmConfig(tag="T", h=10, off_delay_s=3))
    alarm = engine.get("T.H")
    change(engine, "T", 11.0)
    change(engine, "T", 9.0)
    clock.advance(2)
    engine.tick()
    assert alarm.state is S.UNACK_ACTIVE
    clock.advance(1)
    engine.tick()
    assert alarm.state is S.RTN_UNACK


def test_discrete_alarm_and_bad_quality_is_not_judged() -> None:
    engine, _, _ = make(AlarmConfig(tag="F", kind="discrete", state=True, priority=2))
    alarm = engine.get("F")
    change(engine, "F", True)
    assert alarm.state is S.UNACK_ACTIVE
    change(engine, "F", None, Quality.BAD)
    assert alarm.state is S.UNACK_ACTIVE
    change(engine, "F", False)
    assert alarm.state is S.RTN_UNACK


def test_shelving_hides_and_expires_on_its_own() -> None:
    engine, clock, journal = make(TEMP)
    alarm = engine.get("T.H")
    change(engine, "T", 40.0)
    until = clock.now() + timedelta(minutes=30)
    shelve = engine.shelve(alarm, OPERATOR, until)
    assert (shelve.to_state, shelve.shelved_until) == (S.SHELVED, until)
    change(engine, "T", 38.0)
    change(engine, "T", 40.0)
    assert alarm.state is S.SHELVED
    assert alarm not in engine.active()
    clock.advance(timedelta(minutes=29))
    engine.tick()
    assert alarm.state is S.SHELVED
    clock.advance(timedelta(minutes=1))
    engine.tick()
    assert alarm.state is S.UNACK_ACTIVE
    assert journal.rows[-1].event == "shelve_expired"
    assert journal.rows[-1].actor.actor_id == "system"
    engine.shelve(engine.get("T.L"), OPERATOR, until)
    with pytest.raises(HmiError, match="already shelved"):
        engine.shelve(engine.get("T.L"), OPERATOR, until)


def test_shelved_alarm_that_cleared_comes_back_normal() -> None:
    engine, clock, _ = make(TEMP)
    alarm = engine.get("T.H")
    change(engine, "T", 40.0)
    engine.shelve(alarm, OPERATOR, clock.now() + timedelta(seconds=10))
    change(engine, "T", 30.5)
    clock.advance(10)
    engine.tick()
    assert alarm.state is S.NORMAL


def test_suppressed_by_design_follows_its_condition() -> None:
    cfg = AlarmConfig(tag="PH", l=6.6, suppress_when=Condition(tag="PROBE_FAULT", value=True))
    engine, _, journal = make(cfg)
    alarm = engine.get("PH.L")
    change(engine, "PROBE_FAULT", True)
    assert alarm.state is S.SUPPRESSED
    change(engine, "PH", 6.0)
    assert alarm.state is S.SUPPRESSED and alarm.active
    change(engine, "PROBE_FAULT", False)
    assert alarm.state is S.UNACK_ACTIVE
    assert [t.event for t in journal.rows] == ["suppress", "unsuppress"]


def test_out_of_service_and_return() -> None:
    engine, _, _ = make(TEMP)
    alarm = engine.get("T.H")
    oos = engine.remove_from_service(alarm, OPERATOR)
    assert oos.to_state is S.OUT_OF_SERVICE
    change(engine, "T", 40.0)
    assert alarm.state is S.OUT_OF_SERVICE
    with pytest.raises(HmiError, match="already out of service"):
        engine.remove_from_service(alarm, OPERATOR)
    out: list[AlarmTransition] = []
    engine.resume(alarm, "return_to_service", OPERATOR, out)
    assert (out[0].from_state, out[0].to_state) == (S.OUT_OF_SERVICE, S.UNACK_ACTIVE)


def test_communication_and_system_alarms() -> None:
    engine, clock, _ = make()
    engine.on_link(LinkEvent("PLC1", LinkState.DOWN, "timed out", clock.now(), ("T",)))
    comm = engine.get("COMM.PLC1")
    assert comm.state is S.UNACK_ACTIVE and comm.kind == "comm"
    engine.on_link(LinkEvent("PLC1", LinkState.UP, "", clock.now(), ("T",)))
    assert comm.state is S.RTN_UNACK
    engine.raise_system("integrity", "Record integrity check failed", 1)
    system = engine.get("SYSTEM.integrity")
    assert system.state is S.UNACK_ACTIVE and system.priority == 1
    engine.clear_system("integrity")
    assert system.state is S.RTN_UNACK
    with pytest.raises(ValueError, match="priority"):
        engine.raise_system("disk", "Disk nearly full", 5)


def test_active_list_is_sorted_by_priority_then_newest() -> None:
    engine, clock, _ = make(
        AlarmConfig(tag="A", kind="discrete", priority=3),
        AlarmConfig(tag="B", kind="discrete", priority=1),
        AlarmConfig(tag="C", kind="discrete", priority=3),
    )
    for tag in ("A", "B", "C"):
        change(engine, tag, True)
        clock.advance(1)
    assert [a.alarm_id for a in engine.active()] == ["B", "C", "A"]


def test_limits_out_of_order_and_unknown_tags_name_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limits out of order"):
        AlarmConfig(tag="T", h=10, l=20)
    (tmp_path / "devices.toml").write_text(
        '[[device]]\nname = "PLC1"\nkind = "modbus"\nhost = "127.0.0.1"\nport = 502\n'
    )
    (tmp_path / "tags.toml").write_text(
        '[[tag]]\nname = "T"\ndevice = "PLC1"\naddress = "ir:0"\ntype = "float32"\n'
    )
    (tmp_path / "alarms.toml").write_text(
        '[[alarm]]\ntag = "T"\nh = 5\nhh = 4\n\n[[alarm]]\ntag = "X"\nh = 1\n'
        '\n[[alarm]]\ntag = "T"\nkind = "discrete"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    text = str(err.value)
    assert "alarms.toml: alarm[0] (T): limits out of order: hh = 4.0 must be above h = 5.0" in text
    assert "alarm[1] (X).tag: unknown tag 'X'" in text
    assert "alarm[2] (T).kind: tag 'T' is float32, a discrete alarm needs a bool" in text


def test_the_demo_plant_alarms_load() -> None:
    config = load_config(Path(__file__).parents[2] / "config" / "demo")
    engine = AlarmEngine(config.alarms)
    assert {"BR101.TEMP_PV.HH", "BR101.PH_PV.L", "BR101.DO_PV.LL", "BR101.ESTOP"} <= set(
        engine.alarms
    )
