"""Both demo procedures run end to end through the Terminal API against the simulated plant:
every command goes through the command service with the run's step, the sequence gate
refuses commands outside their step, captures are signed and stored, and an overdue step
raises a system alarm (SUP-7, SUP-8, REC-4, 11.10(f))."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from custos_plant import CONSOLE, QA_DESK, ApiPlant, signed
from custos_testkit import PLANT_PASSWORD, demo_config, init_plant_data, until

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.core.api import CaptureRequest, SetpointRequest
from hmi.core.errors import HmiError
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(180)


async def test_sample_imaging_runs_end_to_end_through_commands(api_plant: ApiPlant) -> None:
    api = api_plant.api
    assert api.procedures is not None
    desk = api.procedures
    op = await api_plant.login("op1")
    run = await desk.start(op, CONSOLE, "sample-imaging")
    run_id = run.run_id
    assert (run.state, run.step_number) == ("running", 1)

    # A capture belongs to step 5: refused now, with the step named, and recorded.
    with pytest.raises(HmiError, match="allowed in step 5 'Capture image'"):
        await api.capture(
            op, CONSOLE, CaptureRequest("MIC1.CAM", "too early", signed("op1"), run_id=run_id)
        )
    refused = api_plant.query(
        "SELECT action, outcome FROM audit_trail WHERE run_id = ? AND outcome = 'refused'",
        [run_id],
    )
    assert refused == [("capture_image", "refused")]

    # 1 Load sample: a stage move, signed, recorded with the run and step.
    await api_plant.write(op, "MIC1.StageX", 120.0, run_id)
    step = api_plant.query(
        "SELECT step FROM audit_trail WHERE run_id = ? AND action = 'write_setpoint' "
        "AND outcome = 'done'",
        [run_id],
    )
    assert step == [("1 Load sample",)]
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "sample loaded")
    await desk.complete_step(op, CONSOLE, run_id)

    # 2 Sample ID: typed data with its pattern.
    with pytest.raises(HmiError):
        await desk.enter_data(op, CONSOLE, run_id, "sample_id", "nonsense")
    await desk.enter_data(op, CONSOLE, run_id, "sample_id", "S-2026-001")
    await desk.enter_data(op, CONSOLE, run_id, "stain", "DAPI")
    await desk.complete_step(op, CONSOLE, run_id)

    # 3 Illumination: the lamp must reach its setpoint before the step completes.
    await api_plant.write(op, "MIC1.Illumination", 40.0, run_id)
    view = desk.view(op, run_id)
    assert not next(c for c in view.choices if c.action == "complete_step").allowed
    await api_plant.mic.step(30.0)
    await until(
        lambda: abs(float(api_plant.value("MIC1.IlluminationActual")) - 40.0) < 2, what="lamp"
    )
    await desk.enter_data(op, CONSOLE, run_id, "illumination", 40)
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "illumination set")
    await desk.complete_step(op, CONSOLE, run_id)

    # 4 Focus until the stage is ready.
    await api_plant.write(op, "MIC1.Focus", 1234.5, run_id)
    await api_plant.mic.step(120.0)
    await until(lambda: api_plant.value("MIC1.StageReady") is True, what="stage ready")
    await desk.complete_step(op, CONSOLE, run_id)

    # 5 Capture, signed; the image is stored and recorded with the run and step.
    request = CaptureRequest("MIC1.CAM", "sample image", signed("op1"), run_id=run_id)
    preview = await api.preview_capture(op, CONSOLE, request)
    assert (preview.request.target, preview.request.step) == ("MIC1.CAM", "5 Capture image")
    shot = await api.capture(op, CONSOLE, request)
    assert shot.format == "png" and len(shot.sha256) == 64 and shot.signatures
    await api_plant.mic.step(0.1)
    await until(lambda: int(api_plant.value("MIC1.CaptureCount")) >= 1, what="capture count")
    rows = api_plant.query(
        "SELECT camera, lower(sha256), run_id, step, actor_id FROM captures WHERE run_id = ?",
        [run_id],
    )
    assert rows == [("MIC1.CAM", shot.sha256, run_id, "5 Capture image", "op1")]
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "image taken")
    await desk.complete_step(op, CONSOLE, run_id)

    # 6 Supervisor review: a supervisor signs at this terminal as witness.
    await desk.enter_data(op, CONSOLE, run_id, "image_ok", "yes")
    with pytest.raises(HmiError, match="given by a supervisor"):
        await desk.sign(op, CONSOLE, run_id, "reviewed", signed("op1"), "self review")
    await desk.witness(op, CONSOLE, run_id, "reviewed", signed("sup1"), "image reviewed")
    done = await desk.complete_step(op, CONSOLE, run_id)
    assert done.state == "complete"
    assert [s.status for s in done.steps] == ["done"] * 6

    events = api_plant.query(
        "SELECT event FROM procedure_runs WHERE run_id = ? ORDER BY seq", [run_id]
    )
    assert [e for (e,) in events] == ["created", "started", "completed"]
    steps = api_plant.query(
        "SELECT count(*) FROM step_events WHERE run_id = ? AND event = 'completed'", [run_id]
    )
    assert steps == [(6,)]


async def test_bioreactor_start_up_runs_end_to_end_with_a_witnessed_setpoint(
    api_plant: ApiPlant,
) -> None:
    api = api_plant.api
    assert api.procedures is not None
    desk = api.procedures
    op = await api_plant.login("op1")
    run_id = (await desk.start(op, CONSOLE, "bioreactor-startup")).run_id

    await desk.enter_data(op, CONSOLE, run_id, "vessel_clean", "yes")
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "pre-checks done")
    await desk.complete_step(op, CONSOLE, run_id)
    await desk.enter_data(op, CONSOLE, run_id, "lot_number", "LOT-000123")
    await desk.enter_data(op, CONSOLE, run_id, "volume_l", 150)
    await desk.complete_step(op, CONSOLE, run_id)

    # 3 Agitation: the temperature setpoint belongs to step 4 and is refused here.
    with pytest.raises(HmiError, match="allowed in step 4 'Temperature setpoint'"):
        await api_plant.write(op, "BR101.TEMP_SP", 37.0, run_id)
    await api_plant.write(op, "BR101.AGIT_SP", 200.0, run_id)
    await api_plant.write(op, "BR101.AGITATOR_RUN", True, run_id, kind="operate_equipment")
    assert api_plant.value("BR101.AGITATOR_RUN") is True

    # The step overruns its 300 s: a system alarm and a supervisor notification.
    seq = api_plant.runtime.sequencer
    assert seq is not None and api_plant.runtime.alarms is not None
    started = seq.runs[run_id].step_started_at
    assert started is not None
    seq.runs[run_id].step_started_at = started - timedelta(seconds=301)
    overdue = await api_plant.runtime.check_procedures()
    assert [o.step_title for o in overdue] == ["Start agitation"]
    alarm_id = f"SYSTEM.overdue_step.{run_id[:8]}"
    assert api_plant.runtime.alarms.get(alarm_id).state.value == "UNACK_ACTIVE"
    notes = api_plant.query("SELECT kind FROM notifications WHERE audience = 'supervisor'")
    assert ("overdue_step",) in notes

    api_plant.plc.step(30.0)
    await until(lambda: float(api_plant.value("BR101.AGIT_PV")) > 100, what="agitator speed")
    await desk.complete_step(op, CONSOLE, run_id)
    await api_plant.runtime.check_procedures()
    assert api_plant.runtime.alarms.get(alarm_id).state.value == "RTN_UNACK"

    # 4 Temperature setpoint: double signature, the supervisor witnesses at this terminal.
    request = SetpointRequest(
        "BR101.TEMP_SP",
        37.0,
        "culture temperature",
        signed("op1"),
        witness=signed("sup1"),
        run_id=run_id,
    )
    outcome = await api.request_write(op, CONSOLE, request)
    assert outcome.outcome == "done" and len(outcome.signatures) == 2
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "setpoint entered")
    await desk.witness(op, CONSOLE, run_id, "verified", signed("sup1"), "setpoint checked")
    await desk.complete_step(op, CONSOLE, run_id)

    # 5 At setpoint once the vessel has warmed.
    api_plant.plc.step(1200.0)
    await until(
        lambda: abs(float(api_plant.value("BR101.TEMP_PV")) - 37.0) < 0.5, what="vessel at 37 °C"
    )
    await desk.sign(op, CONSOLE, run_id, "verified", signed("op1"), "at temperature")
    done = await desk.complete_step(op, CONSOLE, run_id)
    assert done.state == "complete"
    audit = api_plant.query(
        "SELECT action, target, step FROM audit_trail WHERE run_id = ? AND outcome = 'done' "
        "ORDER BY seq",
        [run_id],
    )
    assert audit == [
        ("write_setpoint", "BR101.AGIT_SP", "3 Start agitation"),
        ("operate_equipment", "BR101.AGITATOR_RUN", "3 Start agitation"),
        ("write_setpoint", "BR101.TEMP_SP", "4 Temperature setpoint"),
    ]


async def test_procedure_actions_are_refused_from_a_terminal_that_may_not_run_them(
    api_plant: ApiPlant,
) -> None:
    assert api_plant.api.procedures is not None
    op = await api_plant.login("op1", QA_DESK)
    with pytest.raises(HmiError, match="not allowed from terminal T-QA-1"):
        await api_plant.api.procedures.start(op, QA_DESK, "sample-imaging")
    rows = api_plant.query(
        "SELECT action, outcome, terminal_id FROM audit_trail WHERE action = 'procedure_start'"
    )
    assert rows == [("procedure_start", "refused", "T-QA-1")]


async def test_a_run_continues_after_the_runtime_restarts(tmp_path: Path) -> None:
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0, tick=None) as mic,
    ):
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        data = tmp_path / "data"
        await init_plant_data(data, config, CONSOLE)
        async with Runtime(data, config) as first:
            assert first.api is not None and first.api.procedures is not None
            desk = first.api.procedures
            op = await first.api.login("op1", PLANT_PASSWORD, CONSOLE)
            run_id = (await desk.start(op, CONSOLE, "sample-imaging")).run_id
            await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "sample loaded")
        async with Runtime(data, config) as second:
            assert second.api is not None and second.api.procedures is not None
            desk = second.api.procedures
            op = await second.api.login("op1", PLANT_PASSWORD, CONSOLE)
            [run] = desk.runs(op)
            assert (run.run_id, run.state, run.step_number) == (run_id, "running", 1)
            assert run.steps[0].signatures == ("performed (operator): Olga Operator (op1)",)
            after = await desk.complete_step(op, CONSOLE, run_id)
            assert (after.step_number, after.step_title) == (2, "Enter sample ID")
    report = verify_data_dir(data)
    assert report.ok, report.problems
