"""The electronic batch record: one PDF per procedure run, made at a terminal through the
Terminal API from a running plant, with every step, the data entered, the commands with
old → new values, the capture with its thumbnail and SHA-256, the refused attempt, the
signatures with their manifestation and the integrity of the rows (REC-2, REC-7, SUP-7)."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from custos_plant import CONSOLE, QA_DESK, ApiPlant, running_plant, signed
from custos_testkit import PLANT_PASSWORD, until
from pypdf import PdfReader
from reports_kit import pdf_text, tamper

from hmi.bootstrap import open_services
from hmi.core.api import CaptureRequest
from hmi.core.api_reports import ReportDesk
from hmi.core.clock import SystemClock
from hmi.core.errors import HmiError
from hmi.core.reports import ReportRequest
from hmi.records.report_maker import StoreReportMaker

pytestmark = pytest.mark.timeout(180)

OFFSET = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}"


async def imaging_run_to_capture(api_plant: ApiPlant) -> tuple[str, str]:
    """Sample imaging through step 5 (capture, signed); returns the run ID and image SHA-256."""
    api = api_plant.api
    assert api.procedures is not None
    desk = api.procedures
    op = await api_plant.login("op1")
    run_id = (await desk.start(op, CONSOLE, "sample-imaging")).run_id
    with pytest.raises(HmiError):
        await api.capture(
            op, CONSOLE, CaptureRequest("MIC1.CAM", "too early", signed("op1"), run_id=run_id)
        )
    await api_plant.write(op, "MIC1.StageX", 120.0, run_id)
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "sample loaded")
    await desk.complete_step(op, CONSOLE, run_id)
    await desk.enter_data(op, CONSOLE, run_id, "sample_id", "S-2026-001")
    await desk.enter_data(op, CONSOLE, run_id, "stain", "DAPI")
    await desk.complete_step(op, CONSOLE, run_id)
    await api_plant.write(op, "MIC1.Illumination", 40.0, run_id)
    await api_plant.mic.step(30.0)
    await until(
        lambda: abs(float(api_plant.value("MIC1.IlluminationActual")) - 40.0) < 2, what="lamp"
    )
    await desk.enter_data(op, CONSOLE, run_id, "illumination", 40)
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "illumination set")
    await desk.complete_step(op, CONSOLE, run_id)
    await api_plant.write(op, "MIC1.Focus", 1234.5, run_id)
    await api_plant.mic.step(120.0)
    await until(lambda: api_plant.value("MIC1.StageReady") is True, what="stage ready")
    await desk.complete_step(op, CONSOLE, run_id)
    request = CaptureRequest("MIC1.CAM", "sample image", signed("op1"), run_id=run_id)
    shot = await api.capture(op, CONSOLE, request)
    await api_plant.mic.step(0.1)
    await until(lambda: int(api_plant.value("MIC1.CaptureCount")) >= 1, what="capture count")
    await desk.sign(op, CONSOLE, run_id, "performed", signed("op1"), "image taken")
    await desk.complete_step(op, CONSOLE, run_id)
    await desk.enter_data(op, CONSOLE, run_id, "image_ok", "yes")
    await desk.witness(op, CONSOLE, run_id, "reviewed", signed("sup1"), "image reviewed")
    done = await desk.complete_step(op, CONSOLE, run_id)
    assert done.state == "complete"
    return run_id, shot.sha256


async def test_run_record_pdf_holds_the_whole_run(api_plant: ApiPlant) -> None:
    run_id, sha = await imaging_run_to_capture(api_plant)
    api = api_plant.api
    assert api.reports is not None
    qa = await api_plant.login("qa1", QA_DESK)
    done = await api.reports.report(qa, QA_DESK, ReportRequest("run", "pdf", run_id=run_id))

    out = Path(done.path)
    assert out.parent.name == "reports" and out.suffix == ".pdf"
    pages, raw = pdf_text(out)
    text = " ".join(raw.split())
    assert f"Page 1 of {pages}" in text
    assert f"Run ID: {run_id}" in text and "Sample imaging" in text
    assert "State: complete" in text
    for step in ("Load sample", "Enter sample ID", "Supervisor review"):
        assert step in text
    assert "S-2026-001" in text and "DAPI" in text
    # The setpoint commands with their old and new values.
    assert re.search(r"target: MIC1\.Focus .*change: [^ ]+ → 1234\.5", text)
    # The capture: SHA-256 printed, and a thumbnail drawn.
    assert sha in text.replace(" ", "")
    assert any(page.images for page in PdfReader(str(out)).pages)
    # The refused attempt, and each signature's manifestation.
    assert "Refused attempts" in text and "capture_image" in text
    assert re.search(rf"Olga Operator \(op1\), {OFFSET}, performed", text)
    assert re.search(rf"Sam Supervisor \(sup1\), {OFFSET}, reviewed", text)
    for view in ("procedure_runs", "step_events", "audit_trail", "captures", "esignatures"):
        assert re.search(rf"OK: {view} seq \d+\.\.\d+ chained", text), view
    assert done.integrity_ok

    exported = api_plant.query(
        "SELECT actor_id, target, run_id, detail FROM audit_trail "
        "WHERE action = 'report_exported' AND outcome = 'done'"
    )
    assert [(a, t, r) for a, t, r, _ in exported] == [("qa1", f"report:{run_id}", run_id)]
    assert json.loads(exported[0][3])["sha256"] == done.sha256

    flat = await api.reports.report(qa, QA_DESK, ReportRequest("run", "csv", run_id=run_id))
    with open(flat.path) as f:
        rows = list(csv.DictReader(f))
    # The first export is itself an audit row of the run now.
    assert len(rows) == flat.row_count == done.row_count + 1
    sections = {r["section"] for r in rows}
    assert {"Steps", "Step events", "Commands and actions", "Captures"} <= sections
    manifest = json.loads(Path(flat.manifest_path).read_text())
    meanings = {(s["signer_id"], s["meaning"]) for s in manifest["signatures"]}
    assert {("op1", "performed"), ("sup1", "reviewed")} <= meanings


async def test_captures_and_alarms_reports_hold_the_views_rows(api_plant: ApiPlant) -> None:
    run_id, sha = await imaging_run_to_capture(api_plant)
    api = api_plant.api
    assert api.reports is not None
    qa = await api_plant.login("qa1", QA_DESK)
    shots = await api.reports.report(qa, QA_DESK, ReportRequest("captures", "parquet"))
    table = pq.read_table(shots.path)
    assert table.column("sha256").to_pylist() == [sha]
    assert table.column("run_id").to_pylist() == [run_id]
    manifest = json.loads(Path(shots.manifest_path).read_text())
    assert [s["signer_id"] for s in manifest["signatures"]] == ["op1"]

    end = datetime.now(UTC)
    alarms = await api.reports.report(qa, QA_DESK, ReportRequest("alarms", "pdf", end=end))
    (count,) = api_plant.query("SELECT count(*) FROM alarm_journal WHERE ts < ?", [end])[0]
    assert alarms.row_count == count
    pages, text = pdf_text(Path(alarms.path))
    assert f"Page {pages} of {pages}" in text and f"({count} rows, view alarm_journal)" in text


async def test_a_tampered_step_event_fails_the_run_records_integrity(tmp_path: Path) -> None:
    async with running_plant(tmp_path) as plant:
        api = plant.api
        assert api.procedures is not None
        op = await plant.login("op1")
        run_id = (await api.procedures.start(op, CONSOLE, "sample-imaging")).run_id
        await api.procedures.sign(op, CONSOLE, run_id, "performed", signed("op1"), "loaded")
        (seq,) = plant.query(
            "SELECT max(seq) FROM step_events WHERE run_id = ? AND event = 'signed'", [run_id]
        )[0]
        config = plant.runtime.config_dir
    data = tmp_path / "data"
    tamper(data, f"UPDATE procedure_step_records SET reason = 'edited' WHERE seq = {seq}")
    services = open_services(data, config, origin=QA_DESK)
    try:
        desk = ReportDesk(
            services.identity, services.recorder, StoreReportMaker(services.store), SystemClock()
        )
        qa = await services.identity.login("qa1", PLANT_PASSWORD, QA_DESK)
        out = tmp_path / "run.pdf"
        done = await desk.export(qa, QA_DESK, ReportRequest("run", run_id=run_id), str(out))
    finally:
        services.close()
    flat = " ".join(pdf_text(out)[1].split())
    assert not done.integrity_ok
    assert f"FAILED: procedure_step_records seq {seq}" in flat
