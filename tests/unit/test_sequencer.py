"""SUP-7 (11.10(f)): preconditions, forward-only runs, data, signatures, gating, overdue steps.

A real store in tmp_path and a FakeClock; tag values are set in the tag table
as the scanner would set them.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from custos_testkit import ORIGIN
from sequencer_kit import DEMO, PASSWORD, Kit, demo_config, make_kit

from hmi.bootstrap import Services
from hmi.core.clock import FakeClock
from hmi.core.config import load_config
from hmi.core.errors import ConfigError, HmiError, PermissionDenied
from hmi.core.preconditions import ConditionSyntaxError, evaluate, parse_condition
from hmi.core.procedure_config import DataField
from hmi.core.runs import RunState, SequenceError, validate_value
from hmi.core.tags import Quality, TagValue

TAGS = {"BR101.TEMP_PV", "BR101.TEMP_SP", "BR101.AGIT_PV", "MIC1.StageReady", "MIC1.Mode"}

# -- the condition parser -------------------------------------------------------------


def reader(values: dict[str, object], bad: set[str] = frozenset()):  # type: ignore[no-untyped-def]
    def read(name: str) -> TagValue:
        from datetime import UTC, datetime

        q = Quality.BAD if name in bad else Quality.GOOD
        v = None if name in bad else values[name]
        return TagValue(name, v, q, None, datetime(2026, 1, 1, tzinfo=UTC), "link lost")  # type: ignore[arg-type]

    return read


def test_conditions_parse_and_evaluate() -> None:
    c = parse_condition(
        "BR101.TEMP_PV within 0.5 of BR101.TEMP_SP and MIC1.StageReady == true "
        'and BR101.AGIT_PV > 100 and MIC1.Mode != "manual"',
        TAGS,
    )
    assert len(c.parts) == 4
    values = {"BR101.TEMP_PV": 36.8, "BR101.TEMP_SP": 37.0, "MIC1.StageReady": True,
              "BR101.AGIT_PV": 150, "MIC1.Mode": "auto"}  # fmt: skip
    assert evaluate(c, reader(values)).ok
    values["BR101.TEMP_PV"] = 36.4
    verdict = evaluate(c, reader(values))
    assert not verdict.ok and "BR101.TEMP_PV is 36.4" in verdict.reason
    values["BR101.TEMP_PV"] = 37.0
    values["BR101.AGIT_PV"] = 100
    assert "needed: BR101.AGIT_PV > 100" in evaluate(c, reader(values)).reason


def test_a_bad_value_is_not_known_and_the_condition_is_false() -> None:
    c = parse_condition("MIC1.StageReady == true", TAGS)
    verdict = evaluate(c, reader({"MIC1.StageReady": True}, bad={"MIC1.StageReady"}))
    assert not verdict.ok
    assert verdict.reason == "MIC1.StageReady is not known (BAD: link lost)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("BR101.TEMP_PV", "expected a comparison"),
        ("BR101.TEMP_PV >", "expected a tag name or a value, found the end"),
        ("BR101.TEMP_PV > 1 or MIC1.StageReady == true", "expected 'and' or the end"),
        ("BR101.TEMP_PV = 1", "cannot read"),
        ("BR101.TEMP_PV within of BR101.TEMP_SP", "expected a tolerance"),
        ("BR101.TEMP_PV within -1 of BR101.TEMP_SP", "cannot be negative"),
        ("BR101.TEMP_PV within 1 BR101.TEMP_SP", "expected 'of'"),
        ("BR101.TEMP_PV > true", "compares numbers"),
        ("__import__('os').system('x') == 1", "cannot read"),
        ("BR101.TEMP_PV > 1 and", "expected a tag name"),
        ("BR101.TMP_PV > 1", "unknown tag 'BR101.TMP_PV'"),
    ],
)
def test_bad_conditions_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConditionSyntaxError, match=message.replace("(", r"\(")):
        parse_condition(text, TAGS)


def _config_with(tmp_path: Path, procedure: str) -> Path:
    root = tmp_path / "cfg"
    shutil.copytree(DEMO, root)
    (root / "procedures" / "broken.toml").write_text(procedure)
    return root


def test_procedure_errors_name_file_key_path_and_reason(tmp_path: Path) -> None:
    root = _config_with(
        tmp_path,
        'id = "broken"\ntitle = "Broken"\nversion = "1"\n'
        '[[steps]]\nid = "one"\ntitle = "One"\n'
        'preconditions = ["BR101.TEMP_PV within 0.5 of BR101.NOPE"]\n'
        'commands = ["write_setpoint:BR101.TEMP_PV", "launch:BR101.TEMP_SP"]\n'
        'signatures = [{ meaning = "blessed", role = "operator" }]\n'
        '[[steps]]\nid = "two"\ntitle = "Two"\n'
        'data = [{ name = "n", type = "int", min = 5, max = 1 }]\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(root)
    text = str(info.value)
    where = f"{root}/procedures/broken.toml"
    assert f"{where}: step[0] (one): Value error, command 'launch:BR101.TEMP_SP'" in text
    assert f"{where}: step[1] (two).data[0] (n): Value error, min 5 is above max 1" in text
    root2 = _config_with(
        tmp_path / "b",
        'id = "broken"\ntitle = "Broken"\nversion = "1"\n'
        '[[steps]]\nid = "one"\ntitle = "One"\n'
        'preconditions = ["BR101.TEMP_PV within 0.5 of BR101.NOPE"]\n'
        'commands = ["write_setpoint:BR101.TEMP_PV"]\n'
        'signatures = [{ meaning = "blessed", role = "operator" }]\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(root2)
    text = str(info.value)
    where = f"{root2}/procedures/broken.toml"
    assert f"{where}: step[0] (one).preconditions[0]: " in text
    assert "unknown tag 'BR101.NOPE'" in text
    assert f"{where}: step[0] (one).commands[0]: BR101.TEMP_PV is not writable" in text
    assert f"{where}: step[0] (one).signatures[0].meaning: meaning 'blessed'" in text


def test_unknown_keys_missing_keys_and_duplicate_ids_are_named(tmp_path: Path) -> None:
    root = _config_with(
        tmp_path,
        'id = "sample-imaging"\ntitle = "Copy"\nversion = "1"\ncolour = "red"\n'
        '[[steps]]\nid = "one"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(root)
    text = str(info.value)
    where = f"{root}/procedures/broken.toml"
    assert f"{where}: colour: unknown key" in text
    assert f"{where}: step[0] (one).title: required key is missing" in text
    (root / "procedures" / "broken.toml").write_text(
        'id = "sample-imaging"\ntitle = "Copy"\nversion = "1"\n[[steps]]\nid = "one"\n'
        'title = "One"\n'
    )
    with pytest.raises(ConfigError, match="also used by procedures/"):
        load_config(root)


def test_demo_procedures_load() -> None:
    ids = {p.id: len(p.steps) for p in demo_config().procedures}
    assert ids == {"sample-imaging": 6, "bioreactor-startup": 5}


# -- entered data ---------------------------------------------------------------------


def test_data_is_validated_by_type_pattern_limits_and_choices() -> None:
    text = DataField(name="sample_id", label="Sample ID", pattern="S-[0-9]{4}")
    assert validate_value(text, " S-0042 ") == "S-0042"
    with pytest.raises(SequenceError, match="does not have the expected form"):
        validate_value(text, "S-42")
    number = DataField(name="v", label="Volume", type="float", min=1, max=200, units="L")
    assert validate_value(number, "12.5") == "12.5"
    with pytest.raises(SequenceError, match="above the maximum 200 L"):
        validate_value(number, 250)
    with pytest.raises(SequenceError, match="must be a number"):
        validate_value(number, "lots")
    whole = DataField(name="n", type="int", min=0)
    assert validate_value(whole, "3") == "3"
    with pytest.raises(SequenceError, match="whole number"):
        validate_value(whole, 2.5)
    choice = DataField(name="c", type="choice", choices=["yes", "no"])
    with pytest.raises(SequenceError, match="one of: yes, no"):
        validate_value(choice, "maybe")


# -- runs -----------------------------------------------------------------------------


@pytest.fixture
async def kit(services: Services, make_user: object, clock: FakeClock) -> Kit:
    return await make_kit(services, make_user, clock)


async def sign(kit: Kit, run_id: str, who: str, meaning: str) -> None:
    session = {"op1": kit.op1, "op2": kit.op2, "sup1": kit.sup1}[who]
    await kit.seq.sign_step(session, run_id, meaning, PASSWORD, reason="done", user_id=who)


async def test_sample_imaging_end_to_end(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "sample-imaging")
    assert run.state is RunState.IDLE
    await seq.start(op, run.run_id)
    await seq.gate(op, run.run_id, "write_setpoint", "MIC1.StageX")
    await sign(kit, run.run_id, "op1", "performed")
    await seq.complete_step(op, run.run_id)
    await seq.enter_data(op, run.run_id, "sample_id", "S-2026-001")
    await seq.enter_data(op, run.run_id, "stain", "DAPI")
    await seq.complete_step(op, run.run_id)
    await seq.enter_data(op, run.run_id, "illumination", "40")
    await seq.gate(op, run.run_id, "write_setpoint", "MIC1.Illumination")
    kit.set("MIC1.Illumination", 40.0)
    kit.set("MIC1.IlluminationActual", 40.5)
    await sign(kit, run.run_id, "op1", "performed")
    await seq.complete_step(op, run.run_id)
    kit.set("MIC1.StageReady", False)
    with pytest.raises(SequenceError, match=r"MIC1\.StageReady is false; needed"):
        await seq.complete_step(op, run.run_id)
    kit.set("MIC1.StageReady", True)
    await seq.complete_step(op, run.run_id)
    await seq.gate(op, run.run_id, "capture", "MIC1.CAM")
    kit.set("MIC1.CaptureCount", 1)
    await sign(kit, run.run_id, "op1", "performed")
    await seq.complete_step(op, run.run_id)
    await seq.enter_data(kit.sup1, run.run_id, "image_ok", "yes")
    with pytest.raises(SequenceError, match="is given by a supervisor; op1 is not one"):
        await sign(kit, run.run_id, "op1", "reviewed")
    await sign(kit, run.run_id, "sup1", "reviewed")
    await seq.complete_step(kit.sup1, run.run_id)
    assert run.state is RunState.COMPLETE


async def bioreactor_to_temperature(kit: Kit) -> str:
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "bioreactor-startup")
    await seq.start(op, run.run_id)
    for tag in ("BR101.ESTOP", "BR101.HEATER_FAULT", "BR101.AGITATOR_TRIP"):
        kit.set(tag, False)
    await seq.enter_data(op, run.run_id, "vessel_clean", "yes")
    await sign(kit, run.run_id, "op1", "performed")
    await seq.complete_step(op, run.run_id)
    await seq.enter_data(op, run.run_id, "lot_number", "LOT-202611")
    await seq.enter_data(op, run.run_id, "volume_l", 50)
    await seq.complete_step(op, run.run_id)
    await seq.gate(op, run.run_id, "operate", "BR101.AGITATOR_RUN")
    kit.set("BR101.AGITATOR_RUN", True)
    kit.set("BR101.AGIT_PV", 150.0)
    await seq.complete_step(op, run.run_id)
    return run.run_id


async def test_bioreactor_start_up_end_to_end_with_a_witness(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run_id = await bioreactor_to_temperature(kit)
    await seq.gate(op, run_id, "write_setpoint", "BR101.TEMP_SP")
    kit.set("BR101.TEMP_SP", 37.0)
    await sign(kit, run_id, "op1", "performed")
    with pytest.raises(SequenceError, match="witness is a different person"):
        await seq.witness_step(op, run_id, "verified", "op1", PASSWORD, reason="checked")
    with pytest.raises(SequenceError, match="is given by a supervisor; op2 is not one"):
        await seq.witness_step(op, run_id, "verified", "op2", PASSWORD, reason="checked")
    sig = await seq.witness_step(op, run_id, "verified", "sup1", PASSWORD, reason="checked")
    assert sig.signer_id == "sup1"
    await seq.complete_step(op, run_id)
    kit.set("BR101.TEMP_PV", 36.2)
    with pytest.raises(SequenceError, match=r"BR101.TEMP_PV is 36.2, not BR101.TEMP_PV within"):
        await seq.complete_step(op, run_id)
    kit.set("BR101.TEMP_PV", 36.7)
    await sign(kit, run_id, "op1", "verified")
    await seq.complete_step(op, run_id)
    assert seq.run(run_id).state is RunState.COMPLETE
    with pytest.raises(SequenceError, match="is complete"):
        await seq.complete_step(op, run_id)
    with pytest.raises(SequenceError, match="can be started only when idle"):
        await seq.start(op, run_id)


async def test_a_person_signs_a_step_once_and_signatures_bind_the_data(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run_id = await bioreactor_to_temperature(kit)
    with pytest.raises(SequenceError, match="needs no further 'reviewed'"):
        await sign(kit, run_id, "op1", "reviewed")
    await sign(kit, run_id, "op1", "performed")
    with pytest.raises(SequenceError, match="needs no further 'performed'"):
        await sign(kit, run_id, "op2", "performed")
    with pytest.raises(SequenceError, match="op1 has already signed"):
        await sign(kit, run_id, "op1", "verified")
    run = await seq.create_run(op, "bioreactor-startup")
    await seq.start(op, run.run_id)
    with pytest.raises(SequenceError, match="Enter Vessel cleaned and closed before signing"):
        await sign(kit, run.run_id, "op1", "performed")
    await seq.enter_data(op, run.run_id, "vessel_clean", "yes")
    await sign(kit, run.run_id, "op1", "performed")
    with pytest.raises(SequenceError, match="already signed; its data can no longer"):
        await seq.enter_data(op, run.run_id, "vessel_clean", "yes")


async def test_preconditions_on_bad_values_block_completion(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "bioreactor-startup")
    await seq.start(op, run.run_id)
    await seq.enter_data(op, run.run_id, "vessel_clean", "yes")
    await sign(kit, run.run_id, "op1", "performed")
    kit.set("BR101.ESTOP", False)
    kit.set("BR101.HEATER_FAULT", False)
    with pytest.raises(SequenceError, match=r"BR101.AGITATOR_TRIP is not known \(BAD"):
        await seq.complete_step(op, run.run_id)
    kit.set("BR101.AGITATOR_TRIP", True)
    with pytest.raises(SequenceError, match=r"BR101\.AGITATOR_TRIP is true; needed"):
        await seq.complete_step(op, run.run_id)
    kit.set("BR101.AGITATOR_TRIP", None, good=False)
    with pytest.raises(SequenceError, match="not known"):
        await seq.complete_step(op, run.run_id)
    assert seq.run(run.run_id).step_index == 0


async def test_gate_names_the_step_where_a_command_is_allowed(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "sample-imaging")
    with pytest.raises(SequenceError, match="the run of 'Sample imaging' is idle"):
        await seq.gate(op, run.run_id, "capture", "MIC1.CAM")
    await seq.start(op, run.run_id)
    await sign(kit, run.run_id, "op1", "performed")
    await seq.complete_step(op, run.run_id)
    with pytest.raises(SequenceError) as info:
        await seq.gate(None, run.run_id, "capture", "MIC1.CAM")
    assert info.value.message == (
        "Capture of MIC1.CAM is allowed in step 5 'Capture image'; "
        "the run is in step 2 'Enter sample ID'."
    )
    with pytest.raises(SequenceError, match="is not part of procedure 'Sample imaging'"):
        await seq.gate(op, run.run_id, "write_setpoint", "BR101.TEMP_SP")


async def test_what_now_says_what_is_allowed_and_why_not(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "sample-imaging")
    await seq.start(op, run.run_id)
    await sign(kit, run.run_id, "op1", "performed")
    await seq.complete_step(op, run.run_id)
    choices = {(c.action, c.target): c for c in seq.what_now(run.run_id, op)}
    assert choices[("enter_data", "sample_id")].allowed
    assert not choices[("start", None)].allowed
    assert choices[("hold", None)].allowed
    assert "Only a supervisor may abort" in choices[("abort", None)].why
    assert choices[("abort", None)].allowed is False
    assert seq.what_now(run.run_id, kit.sup1)[3].allowed  # abort, for a supervisor
    complete = choices[("complete_step", "sample-id")]
    assert not complete.allowed and "Sample ID is not entered" in complete.why
    capture = choices[("capture", "MIC1.CAM")]
    assert not capture.allowed and "allowed in step 5 'Capture image'" in capture.why


async def test_hold_restart_abort_need_reason_signature_and_role(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "sample-imaging")
    await seq.start(op, run.run_id)
    with pytest.raises(SequenceError, match="A reason is required"):
        await seq.hold(op, run.run_id, " ", PASSWORD, "op1")
    with pytest.raises(HmiError, match="user ID and password"):
        await seq.hold(op, run.run_id, "sample dropped", PASSWORD)
    await seq.hold(op, run.run_id, "sample dropped", PASSWORD, "op1")
    assert run.state is RunState.HELD
    with pytest.raises(SequenceError, match="is held; this needs a running run"):
        await seq.enter_data(op, run.run_id, "sample_id", "S-2026-001")
    with pytest.raises(SequenceError, match="not allowed: the run of 'Sample imaging' is held"):
        await seq.gate(op, run.run_id, "write_setpoint", "MIC1.StageX")
    await seq.restart(op, run.run_id, "sample replaced", PASSWORD)
    assert run.state is RunState.RUNNING
    with pytest.raises(SequenceError, match="Only a supervisor may abort"):
        await seq.abort(op, run.run_id, "wrong slide", PASSWORD)
    await seq.abort(kit.sup1, run.run_id, "wrong slide", PASSWORD, "sup1")
    assert run.state is RunState.ABORTED
    with pytest.raises(SequenceError, match="can be restarted only when held"):
        await seq.restart(op, run.run_id, "again", PASSWORD)


async def test_a_person_without_the_permission_cannot_run_procedures(
    kit: Kit, make_user: object
) -> None:
    assert callable(make_user)
    await make_user("qa1", "Quinn QA", "qa")
    qa = await kit.services.identity.login("qa1", PASSWORD, ORIGIN)
    with pytest.raises(PermissionDenied):
        await kit.seq.create_run(qa, "sample-imaging")
    run = await kit.seq.create_run(kit.op1, "sample-imaging")
    assert not any(c.allowed for c in kit.seq.what_now(run.run_id, qa))


async def test_an_overdue_step_is_reported_once(kit: Kit) -> None:
    seq, op = kit.seq, kit.op1
    run = await seq.create_run(op, "sample-imaging")
    await seq.start(op, run.run_id)
    kit.clock.advance(timedelta(seconds=600))
    assert await seq.tick() == []
    kit.clock.advance(timedelta(seconds=1))
    overdue = await seq.tick()
    assert [(o.step_number, o.step_title) for o in overdue] == [(1, "Load sample")]
    assert "longer than its limit of 600 s" in overdue[0].message
    kit.clock.advance(timedelta(seconds=600))
    assert await seq.tick() == []
    notes = await kit.services.recorder.notifications("supervisor")
    assert [n[2] for n in notes] == ["overdue_step"]


async def test_a_run_never_goes_back(kit: Kit) -> None:
    run = await kit.seq.create_run(kit.op1, "sample-imaging")
    await kit.seq.start(kit.op1, run.run_id)
    await sign(kit, run.run_id, "op1", "performed")
    await kit.seq.complete_step(kit.op1, run.run_id)
    with pytest.raises(SequenceError, match="only moves forward"):
        run.begin_step(0, kit.clock.now())
    assert run.step_index == 1


async def test_two_terminals_completing_the_same_step_advance_it_once(kit: Kit) -> None:
    import asyncio

    run = await kit.seq.create_run(kit.op1, "sample-imaging")
    await kit.seq.start(kit.op1, run.run_id)
    await sign(kit, run.run_id, "op1", "performed")
    results = await asyncio.gather(
        kit.seq.complete_step(kit.op1, run.run_id),
        kit.seq.complete_step(kit.op2, run.run_id),
        return_exceptions=True,
    )
    assert sum(isinstance(r, SequenceError) for r in results) == 1
    assert run.step_index == 1


async def test_a_change_that_cannot_be_recorded_does_not_happen(kit: Kit) -> None:
    run = await kit.seq.create_run(kit.op1, "sample-imaging")
    recorder = kit.seq.recorder

    class Broken:
        async def commit(self, records: object) -> list[object]:
            raise HmiError("disk full", title="Not recorded")

    kit.seq.recorder = Broken()
    with pytest.raises(HmiError, match="disk full"):
        await kit.seq.start(kit.op1, run.run_id)
    assert run.state is RunState.IDLE
    kit.seq.recorder = recorder
    await kit.seq.start(kit.op1, run.run_id)
    assert run.state is RunState.RUNNING
