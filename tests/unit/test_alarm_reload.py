"""Approved alarm definitions merged into a live engine on virtual time (SUP-12, ISA-18.2):
unchanged alarms keep their state, changed ones are judged at once, removed ones that
matter are journaled as removed, system alarms are left alone."""

from __future__ import annotations

from datetime import timedelta

from test_alarms import OPERATOR, change, make

from drivers.base import LinkState
from hmi.core.alarm_config import AlarmConfig, Condition
from hmi.core.alarm_reload import AlarmReload, CurrentValue, drop_device_alarms, reload_alarms
from hmi.core.alarms import AlarmEngine, AlarmState
from hmi.core.scanner import LinkEvent
from hmi.core.tags import Quality, TagScalar

S = AlarmState
TEMP = AlarmConfig(tag="T", h=39, l=30, deadband=0.5)
PRESS = AlarmConfig(tag="P", h=2.0)


def values(**by_tag: TagScalar) -> CurrentValue:
    def current(tag: str) -> tuple[TagScalar | None, Quality] | None:
        return (by_tag[tag], Quality.GOOD) if tag in by_tag else None

    return current


def reload(engine: AlarmEngine, *configs: AlarmConfig, **by_tag: TagScalar) -> AlarmReload:
    return reload_alarms(engine, configs, 7, values(**by_tag))


def test_a_lowered_limit_already_exceeded_activates_at_once() -> None:
    engine, _, journal = make(TEMP)
    change(engine, "T", 35.0)
    assert engine.get("T.H").state is S.NORMAL
    done = reload(engine, TEMP.model_copy(update={"h": 34.0}), T=35.0)
    alarm = engine.get("T.H")
    assert (alarm.state, alarm.limit) == (S.UNACK_ACTIVE, 34.0)
    [row] = journal.rows
    seen = (row.alarm_id, row.event, row.limit_value, row.value)
    assert seen == ("T.H", "activate", "34", "35.0")
    assert done.changed == ("T.H",) and done.unchanged == 1
    assert "changed T.H" in done.summary()


def test_a_raised_limit_no_longer_exceeded_clears_through_the_state_machine() -> None:
    engine, _, journal = make(TEMP)
    change(engine, "T", 40.0)
    engine.acknowledge(engine.get("T.H"), OPERATOR)
    reload(engine, TEMP.model_copy(update={"h": 45.0, "l": 20.0}), T=40.0)
    assert engine.get("T.H").state is S.NORMAL
    assert [(t.event, t.from_state, t.to_state) for t in journal.rows[-1:]] == [
        ("clear", S.ACK_ACTIVE, S.NORMAL)
    ]


def test_unchanged_alarms_keep_acknowledged_and_shelved_state() -> None:
    engine, clock, journal = make(TEMP, PRESS)
    change(engine, "T", 40.0)
    change(engine, "P", 3.0)
    engine.acknowledge(engine.get("T.H"), OPERATOR)
    engine.shelve(engine.get("P.H"), OPERATOR, clock.now() + timedelta(hours=1))
    before = len(journal.rows)
    done = reload(engine, TEMP, PRESS, AlarmConfig(tag="F", l=1.0), T=40.0, P=3.0, F=5.0)
    assert engine.get("T.H").state is S.ACK_ACTIVE
    assert engine.get("P.H").state is S.SHELVED
    assert engine.get("F.L").state is S.NORMAL
    assert len(journal.rows) == before
    assert done.added == ("F.L",) and done.unchanged == 3


def test_a_new_alarm_already_past_its_limit_activates() -> None:
    engine, _, journal = make(TEMP)
    reload(engine, TEMP, PRESS, T=35.0, P=2.5)
    assert engine.get("P.H").state is S.UNACK_ACTIVE
    change(engine, "P", 1.0)
    assert engine.get("P.H").state is S.RTN_UNACK
    assert [t.event for t in journal.rows] == ["activate", "clear"]


def test_a_removed_active_alarm_is_journaled_a_normal_one_just_goes() -> None:
    engine, _, journal = make(TEMP, PRESS)
    change(engine, "P", 3.0)
    engine.raise_system("disk_low", "Disk nearly full", 2)
    link_rows = len(journal.rows)
    done = reload(engine, T=35.0)
    assert "P.H" not in engine.alarms and "T.H" not in engine.alarms
    assert "SYSTEM.disk_low" in engine.alarms
    [row] = journal.rows[link_rows:]
    assert (row.alarm_id, row.event, row.from_state, row.to_state) == (
        "P.H",
        "removed_by_config",
        S.UNACK_ACTIVE,
        S.NORMAL,
    )
    assert "removed by configuration version 7" in row.message
    assert row.actor.source == "config:version 7"
    assert set(done.removed) == {"P.H", "T.H", "T.L"}
    change(engine, "P", 5.0)  # the tag goes on; no alarm follows it any more
    assert len(journal.rows) == link_rows + 1


def test_a_changed_suppression_is_judged_against_the_current_value() -> None:
    engine, _, _ = make(PRESS)
    change(engine, "P", 3.0)
    suppressed = PRESS.model_copy(update={"suppress_when": Condition(tag="RUN", value=False)})
    reload(engine, suppressed, P=3.0, RUN=False)
    assert engine.get("P.H").state is S.SUPPRESSED
    change(engine, "RUN", True)
    assert engine.get("P.H").state is S.UNACK_ACTIVE


def test_a_removed_devices_lost_link_alarm_is_journaled_as_removed() -> None:
    engine, clock, journal = make(TEMP)
    engine.on_link(LinkEvent("PLC9", LinkState.DOWN, "refused", clock.now(), ()))
    assert engine.get("COMM.PLC9").state is S.UNACK_ACTIVE
    assert drop_device_alarms(engine, ["PLC9", "PLC8"], 3) == ["COMM.PLC9"]
    assert "COMM.PLC9" not in engine.alarms
    assert journal.rows[-1].event == "removed_by_config"
