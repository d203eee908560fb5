"""SUP-7 after a restart: a run rebuilt from its records is the run the sequencer left.

The records are written here as the sequencer writes them (hmi/core/sequencer.py);
tests/store/test_run_restore.py drives a real sequencer on a real store instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sequencer_kit import demo_config

from hmi.core.procedure_config import Procedure
from hmi.core.run_replay import RecordedRun, rebuild
from hmi.core.runs import Actor, RunEvent, RunState, SequenceError, StepEvent
from hmi.core.step_rules import transition_check

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
OP = Actor("op1", "Olga Operator", "T-1", "local:test")
SUP = Actor("sup1", "Susan Supervisor", "T-1", "local:test")


def procedures() -> dict[str, Procedure]:
    return {p.id: p for p in demo_config().procedures}


@dataclass
class Book:
    """Records of one run of ``proc_id``, each a minute after the one before."""

    proc_id: str = "sample-imaging"
    version: str = "1"
    run_id: str = "run-1"
    runs: list[tuple[datetime, RunEvent]] = field(default_factory=list)
    steps: list[tuple[datetime, StepEvent]] = field(default_factory=list)
    minutes: int = 0
    index: int = 0
    state: str | None = None

    def _tick(self) -> datetime:
        self.minutes += 1
        return T0 + timedelta(minutes=self.minutes)

    def _step_id(self, index: int) -> str:
        return procedures()[self.proc_id].steps[index].id

    def run(self, event: str, state_to: str, actor: Actor = OP) -> Book:
        step_id = self._step_id(self.index)
        ev = RunEvent(self.run_id, self.proc_id, self.version, "Sample imaging", event,
                      self.state, state_to, self.index, step_id, actor)  # fmt: skip
        self.runs.append((self._tick(), ev))
        self.state = state_to
        return self

    def step(self, event: str, actor: Actor = OP, outcome: str = "done", **kw: object) -> Book:
        if event == "started" and self.steps:
            self.index += 1
        step_id = self._step_id(self.index)
        ev = StepEvent(self.run_id, self.proc_id, self.index, step_id, step_id, event, outcome,
                       actor, **kw)  # type: ignore[arg-type]  # fmt: skip
        self.steps.append((self._tick(), ev))
        return self

    def started(self) -> Book:
        return self.run("created", "idle").run("started", "running").step("started")

    def recorded(self) -> RecordedRun:
        return RecordedRun(self.run_id, tuple(self.runs), tuple(self.steps))


def test_a_created_run_is_idle_in_step_one() -> None:
    book = Book().run("created", "idle")
    got = rebuild(book.recorded(), procedures())
    assert got.problem is None and got.recorded_state is RunState.IDLE
    run = got.run
    assert (run.state, run.step_index, run.step_started_at) == (RunState.IDLE, 0, None)
    assert run.created_at == T0 + timedelta(minutes=1)


def test_a_running_run_keeps_step_start_data_and_overdue_notice() -> None:
    book = Book().started().step("signed", meaning="performed", signature_ids=("sig-1",))
    book.step("overdue", Actor("system", "Custos runtime", None, None), reason="late")
    book.step("completed", signature_ids=("sig-1",)).step("started")
    book.step("data", field="sample_id", value="S-2026-007")
    book.step("refused", outcome="refused", action="enter_data:stain", reason="must be one of")
    run = rebuild(book.recorded(), procedures()).run
    assert run.state is RunState.RUNNING
    assert (run.step_index, run.step.id) == (1, "sample-id")
    assert run.step_started_at == T0 + timedelta(minutes=7)
    assert run.data == {"sample_id": "S-2026-007"}
    assert run.signatures == [] and not run.overdue_reported
    assert [f.name for f in run.missing_data()] == ["stain"]


def test_signatures_and_overdue_of_the_current_step_are_kept() -> None:
    book = Book().started()
    book.step("overdue", Actor("system", "Custos runtime", None, None), reason="late")
    book.step("signed", meaning="performed", signature_ids=("sig-1",))
    run = rebuild(book.recorded(), procedures()).run
    assert run.overdue_reported
    [given] = run.signatures
    assert (given.meaning, given.role, given.signer_id, given.signer_name, given.signature_id) == (
        "performed", "operator", "op1", "Olga Operator", "sig-1")  # fmt: skip
    assert run.unsigned() == []


def test_two_roles_of_one_step_each_find_their_signature() -> None:
    book = Book(proc_id="bioreactor-startup").started()
    for _ in range(3):
        book.step("completed").step("started")
    book.step("signed", meaning="performed", signature_ids=("s-op",))
    book.step("signed", SUP, meaning="verified", signature_ids=("s-sup",))
    run = rebuild(book.recorded(), procedures()).run
    assert run.step.id == "temperature"
    assert [(s.meaning, s.role, s.signer_id) for s in run.signatures] == [
        ("performed", "operator", "op1"), ("verified", "supervisor", "sup1")]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "state"),
    [
        (["held"], RunState.HELD),
        (["held", "restarted"], RunState.RUNNING),
        (["held", "restarted", "resumed"], RunState.RUNNING),
    ],
)
def test_state_transitions_replay(events: list[str], state: RunState) -> None:
    book = Book().started()
    to = {"held": "held", "restarted": "running", "resumed": "running"}
    for e in events:
        book.run(e, to[e])
    got = rebuild(book.recorded(), procedures())
    assert got.problem is None and got.run.state is state is got.recorded_state


def test_a_changed_version_is_not_replayed_but_held_until_aborted() -> None:
    book = Book(version="0").started().step("signed", meaning="performed", signature_ids=("s1",))
    got = rebuild(book.recorded(), procedures())
    assert got.problem == "'Sample imaging' is now version 1; the run was recorded with version 0"
    run = got.run
    assert run.state is RunState.HELD and got.recorded_state is RunState.RUNNING
    assert (run.procedure.version, run.step.id, run.step_started_at) == (
        "0", "load-sample", T0 + timedelta(minutes=3))  # fmt: skip
    assert [s.signature_id for s in run.signatures] == ["s1"]
    assert run.procedure.abort_roles == ["supervisor"]
    run.blocked = got.problem
    with pytest.raises(SequenceError, match="can only be aborted: 'Sample imaging' is now"):
        transition_check(run, "restart", ("supervisor",))
    transition_check(run, "abort", ("supervisor",))


def test_a_step_that_no_longer_exists_is_not_replayed() -> None:
    book = Book().started().step("completed").step("started")
    book.steps[-1] = (book.steps[-1][0], _renamed(book.steps[-1][1], "enter-sample"))
    got = rebuild(book.recorded(), procedures())
    assert got.problem is not None and "'enter-sample'" in got.problem
    assert got.run.state is RunState.HELD
    assert [s.id for s in got.run.procedure.steps] == ["load-sample", "enter-sample"]


def test_a_procedure_no_longer_configured_is_held_on_its_recorded_steps() -> None:
    book = Book().started()
    others = {k: v for k, v in procedures().items() if k != "sample-imaging"}
    got = rebuild(book.recorded(), others)
    assert got.problem == "procedure 'sample-imaging' is no longer configured"
    assert (got.run.procedure.title, got.run.step.id) == ("Sample imaging", "load-sample")


def test_records_out_of_sequence_are_not_replayed() -> None:
    book = Book().run("created", "idle").run("restarted", "running")
    got = rebuild(book.recorded(), procedures())
    assert got.problem is not None and "starts from idle" not in got.problem
    assert "can be restarted only when held" in got.problem


def test_a_signature_the_step_does_not_ask_for_is_not_replayed() -> None:
    book = Book().started().step("signed", meaning="reviewed", signature_ids=("s1",))
    got = rebuild(book.recorded(), procedures())
    assert got.problem is not None and "asks for no further 'reviewed'" in got.problem


def _renamed(ev: StepEvent, step_id: str) -> StepEvent:
    from dataclasses import replace

    return replace(ev, step_id=step_id, step_title=step_id)
