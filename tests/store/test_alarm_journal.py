"""The alarm journal in a real data directory: every transition, with its actor, chained."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from custos_testkit import ORIGIN

from hmi.bootstrap import Services
from hmi.core.alarm_actions import AlarmOperations
from hmi.core.alarm_config import AlarmConfig
from hmi.core.alarms import AlarmEngine, AlarmState
from hmi.core.clock import FakeClock
from hmi.core.errors import HmiError, PermissionDenied, RecordError, SignatureError
from hmi.core.identity import Session
from hmi.core.tags import Quality, TagChange
from hmi.store.alarm_journal import StoreAlarmJournal
from hmi.store.verify import verify_data_dir

TEMP = AlarmConfig(tag="BR101.TEMP_PV", h=39.0, l=30.0, deadband=0.5, priority=2)
Maker = Callable[..., Any]


def feed(engine: AlarmEngine, value: float) -> None:
    now = engine.clock.now()
    engine.on_change(TagChange("BR101.TEMP_PV", value, Quality.GOOD, now, now, "device:PLC1"))


def journal(services: Services) -> list[tuple[Any, ...]]:
    return services.store.query(
        "SELECT seq, alarm_id, event, from_state, to_state, value, limit_name, limit_value, "
        "priority, actor_id, actor_name, terminal_id, comment, signature_ids, shelved_until "
        "FROM alarm_journal ORDER BY seq"
    )


@pytest.fixture
def setup(services: Services, clock: FakeClock) -> tuple[AlarmEngine, AlarmOperations]:
    engine = AlarmEngine([TEMP], clock=clock, journal=StoreAlarmJournal(services.store))
    return engine, AlarmOperations(engine, services.identity, services.esign)


async def test_every_transition_is_journaled_with_its_actor_and_verifies(
    services: Services,
    clock: FakeClock,
    make_user: Maker,
    setup: tuple[AlarmEngine, AlarmOperations],
    tmp_path: Path,
) -> None:
    engine, ops = setup
    op_pw = await make_user("op1", "Olga Operator", "operator")
    sup_pw = await make_user("sup1", "Sam Supervisor", "supervisor")
    operator = await services.identity.login("op1", op_pw, ORIGIN)
    supervisor = await services.identity.login("sup1", sup_pw, ORIGIN)

    feed(engine, 40.0)  # activate
    await ops.acknowledge(operator, "BR101.TEMP_PV.H", "seen, adjusting jacket")
    feed(engine, 38.0)  # clear → NORMAL
    feed(engine, 29.0)  # L activates
    await ops.acknowledge_page(operator, [a.alarm_id for a in engine.active()])
    shelve = await ops.shelve(
        supervisor,
        "BR101.TEMP_PV.L",
        "probe recalibration",
        timedelta(minutes=5),
        sup_pw,
        user_id="sup1",
    )
    clock.advance(timedelta(minutes=5))
    engine.tick()  # shelve expired → UNACK_ACTIVE (still low)
    await ops.remove_from_service(supervisor, "BR101.TEMP_PV.H", "sensor replaced", sup_pw)
    await ops.return_to_service(supervisor, "BR101.TEMP_PV.H", "sensor back", sup_pw)
    assert isinstance(engine.journal, StoreAlarmJournal)
    engine.journal.flush()

    rows = journal(services)
    events = [(r[1], r[2], r[3], r[4]) for r in rows]
    assert events == [
        ("BR101.TEMP_PV.H", "activate", "NORMAL", "UNACK_ACTIVE"),
        ("BR101.TEMP_PV.H", "acknowledge", "UNACK_ACTIVE", "ACK_ACTIVE"),
        ("BR101.TEMP_PV.H", "clear", "ACK_ACTIVE", "NORMAL"),
        ("BR101.TEMP_PV.L", "activate", "NORMAL", "UNACK_ACTIVE"),
        ("BR101.TEMP_PV.L", "acknowledge", "UNACK_ACTIVE", "ACK_ACTIVE"),
        ("BR101.TEMP_PV.L", "shelve", "ACK_ACTIVE", "SHELVED"),
        ("BR101.TEMP_PV.L", "shelve_expired", "SHELVED", "UNACK_ACTIVE"),
        ("BR101.TEMP_PV.H", "out_of_service", "NORMAL", "OUT_OF_SERVICE"),
        ("BR101.TEMP_PV.H", "return_to_service", "OUT_OF_SERVICE", "NORMAL"),
    ]
    assert [r[0] for r in rows] == list(range(1, 10))
    first = rows[0]
    assert (first[5], first[6], first[7], first[8], first[9]) == (
        "40.0",
        "H",
        "39",
        2,
        "device:PLC1",
    )
    ack = rows[1]
    assert ack[9:13] == ("op1", "Olga Operator", ORIGIN.terminal_id, "seen, adjusting jacket")
    shelved = rows[5]
    assert shelved[9] == "sup1" and shelved[12] == "probe recalibration"
    assert shelved[13] == shelve.actor.signature_ids[0]
    assert shelved[14] is not None
    sigs = services.store.query(
        "SELECT signature_id, signer_id, reason FROM esignatures WHERE signature_id = ?",
        [shelved[13]],
    )
    assert sigs == [(shelved[13], "sup1", "probe recalibration")]
    audit = services.store.query(
        "SELECT action, actor_id, signature_ids FROM audit_trail WHERE action LIKE 'alarm_%' "
        "ORDER BY seq"
    )
    assert [a[0] for a in audit] == [
        "alarm_acknowledge",
        "alarm_acknowledge",
        "alarm_shelve",
        "alarm_out_of_service",
        "alarm_return_to_service",
    ]
    assert rows[6][9] == "system"

    services.close()
    assert verify_data_dir(tmp_path / "data").ok


async def test_a_tampered_journal_row_is_detected(
    services: Services,
    setup: tuple[AlarmEngine, AlarmOperations],
    tmp_path: Path,
    tamper: Callable[..., object],
) -> None:
    engine, _ = setup
    for value in (40.0, 38.0, 40.0, 38.0):
        feed(engine, value)
    assert isinstance(engine.journal, StoreAlarmJournal)
    engine.journal.flush()
    services.close()
    data = tmp_path / "data"
    assert verify_data_dir(data).ok
    tamper(data, "UPDATE alarm_journal_records SET value = '38.9' WHERE seq = 1")
    report = verify_data_dir(data)
    assert not report.ok
    assert any(p.table == "alarm_journal_records" and p.seq == 1 for p in report.problems)


async def test_the_guard_refuses_editing_the_journal(
    services: Services, setup: tuple[AlarmEngine, AlarmOperations]
) -> None:
    engine, _ = setup
    feed(engine, 40.0)
    assert isinstance(engine.journal, StoreAlarmJournal)
    engine.journal.flush()
    with pytest.raises(Exception):  # noqa: B017 - the guard trigger's refusal
        services.store.write(lambda tx: tx.execute("DELETE FROM alarm_journal_records"))


async def test_acknowledge_needs_the_permission(
    services: Services, admin_session: Session, setup: tuple[AlarmEngine, AlarmOperations]
) -> None:
    engine, ops = setup
    feed(engine, 40.0)
    with pytest.raises(PermissionDenied, match="may not acknowledge alarm"):
        await ops.acknowledge(admin_session, "BR101.TEMP_PV.H")
    assert engine.get("BR101.TEMP_PV.H").state is AlarmState.UNACK_ACTIVE


async def test_shelve_needs_a_reason_a_signature_and_the_permission(
    services: Services, make_user: Maker, setup: tuple[AlarmEngine, AlarmOperations]
) -> None:
    engine, ops = setup
    op_pw = await make_user("op1", "Olga Operator", "operator")
    sup_pw = await make_user("sup1", "Sam Supervisor", "supervisor")
    operator = await services.identity.login("op1", op_pw, ORIGIN)
    supervisor = await services.identity.login("sup1", sup_pw, ORIGIN)
    feed(engine, 40.0)
    alarm_id = "BR101.TEMP_PV.H"
    five = timedelta(minutes=5)
    with pytest.raises(HmiError, match="Give a reason"):
        await ops.shelve(supervisor, alarm_id, "  ", five, sup_pw, user_id="sup1")
    with pytest.raises(PermissionDenied):
        await ops.shelve(operator, alarm_id, "nuisance", five, op_pw, user_id="op1")
    with pytest.raises(SignatureError):
        await ops.shelve(supervisor, alarm_id, "nuisance", five, sup_pw)  # no user ID
    with pytest.raises(HmiError):
        await ops.shelve(supervisor, alarm_id, "nuisance", five, "wrong password", user_id="sup1")
    with pytest.raises(HmiError, match="12 hours"):
        await ops.shelve(supervisor, alarm_id, "nuisance", timedelta(hours=13), sup_pw)
    assert engine.get(alarm_id).state is AlarmState.UNACK_ACTIVE
    shelved = services.store.query("SELECT count(*) FROM alarm_journal WHERE event = 'shelve'")
    assert shelved == [(0,)]


async def test_an_action_that_cannot_be_recorded_is_undone(
    services: Services, make_user: Maker, setup: tuple[AlarmEngine, AlarmOperations]
) -> None:
    engine, ops = setup
    op_pw = await make_user("op1", "Olga Operator", "operator")
    operator = await services.identity.login("op1", op_pw, ORIGIN)
    feed(engine, 40.0)

    async def refuse(*_: object) -> None:
        raise RecordError("the record store is not available")

    journal_ = engine.journal
    assert isinstance(journal_, StoreAlarmJournal)
    journal_.commit = refuse  # type: ignore[method-assign]
    with pytest.raises(RecordError):
        await ops.acknowledge(operator, "BR101.TEMP_PV.H")
    assert engine.get("BR101.TEMP_PV.H").state is AlarmState.UNACK_ACTIVE
