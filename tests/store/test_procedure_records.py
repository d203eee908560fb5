"""SUP-7 and REC-1: every run transition, data entry, signature, refused attempt and overdue
notice is a chained row in procedure_runs / step_events, and verify detects a changed one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sequencer_kit import PASSWORD, Kit, make_kit

from hmi.bootstrap import Services
from hmi.core.clock import FakeClock
from hmi.core.runs import SequenceError
from hmi.store.tables import PROCEDURE_RUNS, STEP_EVENTS
from hmi.store.verify import verify_data_dir

Tamper = Callable[..., list[tuple[Any, ...]]]
Read = Callable[..., list[tuple[Any, ...]]]


async def some_run(kit: Kit) -> str:
    """A sample imaging run: started, overdue, a signed step, data, refusals, held."""
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "sample-imaging")
    await seq.start(op, run.run_id)
    kit.clock.advance(timedelta(seconds=601))
    await seq.tick()
    await seq.sign_step(op, run.run_id, "performed", PASSWORD, reason="loaded", user_id="op1")
    await seq.complete_step(op, run.run_id)
    await seq.enter_data(op, run.run_id, "sample_id", "S-2026-007")
    with pytest.raises(SequenceError):
        await seq.gate(op, run.run_id, "capture", "MIC1.CAM")
    with pytest.raises(SequenceError):
        await seq.enter_data(op, run.run_id, "stain", "purple")
    await seq.hold(op, run.run_id, "microscope cleaning", PASSWORD, "op1")
    return run.run_id


async def test_every_event_is_recorded_in_order_with_actor(
    services: Services, make_user: object, clock: FakeClock
) -> None:
    kit = await make_kit(services, make_user, clock)
    run_id = await some_run(kit)
    runs = services.store.query(
        "SELECT event, state_from, state_to, step_number, actor_id, reason, signature_ids "
        "FROM procedure_runs WHERE run_id = ? ORDER BY seq",
        [run_id],
    )
    assert [r[:4] for r in runs] == [
        ("created", None, "idle", 1),
        ("started", "idle", "running", 1),
        ("held", "running", "held", 2),
    ]
    assert runs[2][4:6] == ("op1", "microscope cleaning") and runs[2][6]
    steps = services.store.query(
        "SELECT step_number, event, outcome, action, field, value, meaning, signature_ids, "
        "reason, actor_id FROM step_events WHERE run_id = ? ORDER BY seq",
        [run_id],
    )
    events = [(s[0], s[1], s[2]) for s in steps]
    assert events == [
        (1, "started", "done"),
        (1, "overdue", "done"),
        (1, "signed", "done"),
        (1, "completed", "done"),
        (2, "started", "done"),
        (2, "data", "done"),
        (2, "refused", "refused"),
        (2, "refused", "refused"),
    ]
    overdue, signed, completed, data, gate, field = (steps[i] for i in (1, 2, 3, 5, 6, 7))
    assert signed[6] == "performed" and signed[7] == completed[7]
    assert (data[4], data[5], data[9]) == ("sample_id", "S-2026-007", "op1")
    assert gate[3] == "capture:MIC1.CAM" and "allowed in step 5 'Capture image'" in gate[8]
    assert field[3] == "enter_data:stain" and "must be one of" in field[8]
    assert overdue[9] == "system" and "longer than its limit" in overdue[8]
    sig = services.store.query(
        "SELECT signer_id, meaning FROM esignatures WHERE signature_id = ?", [signed[7]]
    )
    assert sig == [("op1", "performed")]


async def test_refused_witness_and_role_are_recorded(
    services: Services, make_user: object, clock: FakeClock
) -> None:
    kit = await make_kit(services, make_user, clock)
    run = await kit.seq.create_run(kit.op1, "sample-imaging")
    await kit.seq.start(kit.op1, run.run_id)
    with pytest.raises(SequenceError):
        await kit.seq.abort(kit.op1, run.run_id, "no reason at all", PASSWORD, "op1")
    rows = services.store.query(
        "SELECT action, reason, actor_id FROM step_events WHERE outcome = 'refused'"
    )
    assert rows == [("abort", "Only a supervisor may abort a run of 'Sample imaging'.", "op1")]


async def test_verify_passes_and_detects_a_changed_step_event(
    services: Services, make_user: object, clock: FakeClock, tamper: Tamper, read: Read
) -> None:
    kit = await make_kit(services, make_user, clock)
    await some_run(kit)
    root: Path = services.store.data_dir.root
    services.close()
    report = verify_data_dir(root)
    assert report.ok, report.summary()
    seq = read(root, f"SELECT seq FROM {STEP_EVENTS.name} WHERE event = 'data'")[0][0]
    tamper(root, f"UPDATE {STEP_EVENTS.name} SET value = 'S-2026-999' WHERE seq = {seq}")
    report = verify_data_dir(root)
    assert not report.ok
    assert (STEP_EVENTS.name, seq) in {(p.table, p.seq) for p in report.problems}


async def test_verify_detects_a_deleted_run_transition(
    services: Services, make_user: object, clock: FakeClock, tamper: Tamper
) -> None:
    kit = await make_kit(services, make_user, clock)
    await some_run(kit)
    root: Path = services.store.data_dir.root
    services.close()
    tamper(root, f"DELETE FROM {PROCEDURE_RUNS.name} WHERE event = 'held'")
    report = verify_data_dir(root)
    assert not report.ok
    assert PROCEDURE_RUNS.name in {p.table for p in report.problems}


async def test_the_guard_refuses_changes_to_step_events(
    services: Services, make_user: object, clock: FakeClock
) -> None:
    kit = await make_kit(services, make_user, clock)
    await some_run(kit)
    with pytest.raises(Exception, match=r"(?i)constraint|guard|primary|refus"):
        services.store.write(lambda tx: tx.execute(f"DELETE FROM {STEP_EVENTS.name}"))
