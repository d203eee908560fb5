"""The Terminal API's alarm desk, captures and signing previews on the running runtime:
each refusal is recorded before it is raised, and what is signed is what was shown
(SUP-6, SUP-8, SUP-9, SIG-1)."""

from __future__ import annotations

import pytest
from custos_plant import CONSOLE, IMAGING, QA_DESK, ApiPlant, signed
from custos_testkit import PLANT_PASSWORD, until

from hmi.core.api import CaptureRequest, Credentials, SetpointRequest
from hmi.core.errors import HmiError

pytestmark = pytest.mark.timeout(120)


def refusals(plant: ApiPlant, action: str) -> list[tuple[object, ...]]:
    return plant.query(
        "SELECT actor_id, terminal_id, target, detail FROM audit_trail "
        "WHERE action = ? AND outcome = 'refused' ORDER BY seq",
        [action],
    )


async def test_alarms_are_acknowledged_and_shelved_through_the_desk(api_plant: ApiPlant) -> None:
    plant = api_plant
    desk = plant.api.alarms
    assert desk is not None
    plant.plc.set("HEATER_FAULT", True)
    op = await plant.login("op1")
    await until(lambda: desk.banner(op).unacknowledged >= 1, what="heater alarm")
    top = desk.banner(op).top
    assert top is not None and top.alarm_id == "BR101.HEATER_FAULT"
    assert (top.priority, top.priority_label) == (2, "!!! P2")

    # The imaging panel does not operate the bioreactor area: refused and recorded.
    at_imaging = await plant.login("op2", IMAGING)
    with pytest.raises(HmiError, match="Area 'bioreactor' cannot be operated"):
        await desk.acknowledge(at_imaging, IMAGING, "BR101.HEATER_FAULT")
    assert refusals(plant, "alarm_acknowledge")[0][:3] == (
        "op2",
        "T-IMAGING-1",
        "BR101.HEATER_FAULT",
    )

    view = await desk.acknowledge(op, CONSOLE, "BR101.HEATER_FAULT", "heater checked")
    assert view.state == "ACK_ACTIVE"

    # Shelving needs the supervisor's permission and a signature.
    with pytest.raises(HmiError):
        await desk.shelve(op, CONSOLE, "BR101.HEATER_FAULT", "noisy", 30, signed("op1"))
    sup = await plant.login("sup1")
    with pytest.raises(HmiError):
        await desk.shelve(
            sup, CONSOLE, "BR101.HEATER_FAULT", "noisy", 30, Credentials("wrong-pass1", "sup1")
        )
    assert [r[0] for r in refusals(plant, "alarm_shelve")] == ["op1", "sup1"]
    shelved = await desk.shelve(
        sup, CONSOLE, "BR101.HEATER_FAULT", "heater under repair", 30, signed("sup1")
    )
    assert shelved.state == "SHELVED" and shelved.shelved_until is not None
    [hidden] = desk.hidden(sup)
    assert hidden.hidden_by == "Sam Supervisor: heater under repair"
    back = await desk.return_to_service(
        sup, CONSOLE, "BR101.HEATER_FAULT", "repair done", signed("sup1")
    )
    assert back.state != "SHELVED"


async def test_captures_are_refused_and_recorded_or_signed_and_stored(
    api_plant: ApiPlant,
) -> None:
    plant = api_plant
    api = plant.api
    op = await plant.login("op1")
    qa_terminal = await plant.login("op2", QA_DESK)
    with pytest.raises(HmiError, match="not allowed from terminal T-QA-1"):
        await api.capture(qa_terminal, QA_DESK, CaptureRequest("MIC1.CAM", "x", signed("op2")))
    with pytest.raises(HmiError, match="ExposureMs"):
        await api.capture(
            op, CONSOLE, CaptureRequest("MIC1.CAM", "x", signed("op1"), {"ExposureMs": 5000.0})
        )
    with pytest.raises(HmiError):
        await api.capture(
            op, CONSOLE, CaptureRequest("MIC1.CAM", "x", Credentials("wrong-pass1", "op1"))
        )
    assert [r[:2] for r in refusals(plant, "capture_image")] == [
        ("op2", "T-QA-1"),
        ("op1", "T-CONSOLE-1"),
        ("op1", "T-CONSOLE-1"),
    ]
    assert plant.query("SELECT count(*) FROM captures") == [(0,)]

    shot = await api.capture(
        op, CONSOLE, CaptureRequest("MIC1.CAM", "slide 4", signed("op1"), {"ExposureMs": 20.0})
    )
    rows = plant.query(
        "SELECT outcome, detail FROM audit_trail WHERE action = 'capture_image' "
        "AND outcome <> 'refused' ORDER BY seq"
    )
    assert [r[0] for r in rows] == ["attempt", "done"]
    assert rows[1][1].startswith(f"{shot.width}x{shot.height} png")
    assert shot.settings.get("ExposureMs") == 20.0


async def test_a_value_that_moves_while_the_dialog_is_open_is_not_signed(
    api_plant: ApiPlant,
) -> None:
    plant = api_plant
    api = plant.api
    op = await plant.login("op1")
    preview = await api.preview_write(op, CONSOLE, "BR101.PH_SP", 7.0, "growth phase")
    assert (preview.request.target, preview.request.new_value) == ("BR101.PH_SP", "7.0")
    assert preview.esign == "single" and preview.needs_user_id
    plant.plc.set("PH_SP", 6.5)  # changed at the device meanwhile
    await until(lambda: plant.value("BR101.PH_SP") == 6.5, what="device change seen")
    request = SetpointRequest(
        "BR101.PH_SP", 7.0, "growth phase", signed("op1"), shown=preview.digest
    )
    with pytest.raises(HmiError, match="changed while the signature dialog was open"):
        await api.request_write(op, CONSOLE, request)
    assert plant.query("SELECT count(*) FROM esignatures WHERE signer_id = 'op1'") == [(0,)]

    fresh = await api.preview_write(op, CONSOLE, "BR101.PH_SP", 7.0, "growth phase")
    assert fresh.request.old_value == "6.5"
    outcome = await api.request_write(
        op,
        CONSOLE,
        SetpointRequest("BR101.PH_SP", 7.0, "growth phase", signed("op1"), shown=fresh.digest),
    )
    assert outcome.outcome == "done" and outcome.old_value == 6.5
    assert PLANT_PASSWORD not in str(plant.query("SELECT * FROM audit_trail"))
