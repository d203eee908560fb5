"""Procedure runs: their states, what is recorded about them, and entered data.

A run follows ISA-88-like states: ``idle`` → ``running`` ⇄ ``held`` →
``complete`` or ``aborted``. Its step index only ever grows, so a run can
never go back to a step it has completed (11.10(f)). Everything that happens
to a run, including every refused attempt, becomes a ``RunEvent`` (state
transitions) or a ``StepEvent`` (step started, data entered, signed,
completed, refused, overdue) that the store chains like audit rows.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from hmi.core.errors import HmiError
from hmi.core.procedure_config import DataField, Procedure, Step


class RunState(enum.StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    HELD = "held"
    COMPLETE = "complete"
    ABORTED = "aborted"


TRANSITIONS: dict[str, tuple[set[RunState], RunState]] = {
    "start": ({RunState.IDLE}, RunState.RUNNING),
    "hold": ({RunState.RUNNING}, RunState.HELD),
    "restart": ({RunState.HELD}, RunState.RUNNING),
    "abort": ({RunState.IDLE, RunState.RUNNING, RunState.HELD}, RunState.ABORTED),
    "complete": ({RunState.RUNNING}, RunState.COMPLETE),
}
"""Transition name → (states it may start from, state it leads to)."""


class SequenceError(HmiError):
    """An action out of sequence; the message says what the run needs instead."""

    title = "Out of sequence"


@dataclass(frozen=True)
class Actor:
    """Who acted and from where, as recorded with every run and step event."""

    actor_id: str | None
    actor_name: str | None
    terminal_id: str | None
    source: str | None


SYSTEM = Actor("system", "Custos runtime", None, None)


@dataclass(frozen=True)
class RunEvent:
    """A state transition of a run (``procedure_runs``)."""

    run_id: str
    procedure_id: str
    procedure_version: str
    procedure_title: str
    event: str
    state_from: str | None
    state_to: str
    step_index: int
    step_id: str
    actor: Actor
    reason: str | None = None
    signature_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepEvent:
    """Anything within a step (``step_events``): started, data, signed, completed, refused,
    overdue."""

    run_id: str
    procedure_id: str
    step_index: int
    step_id: str
    step_title: str
    event: str
    outcome: str
    """``done`` or ``refused``."""
    actor: Actor
    action: str | None = None
    field: str | None = None
    value: str | None = None
    meaning: str | None = None
    signature_ids: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class GivenSignature:
    meaning: str
    role: str
    signer_id: str
    signer_name: str
    signature_id: str


@dataclass
class Run:
    """A run in memory: the store holds its history, this its present."""

    run_id: str
    procedure: Procedure
    state: RunState
    created_at: datetime
    step_index: int = 0
    step_started_at: datetime | None = None
    data: dict[str, str] = field(default_factory=dict)
    signatures: list[GivenSignature] = field(default_factory=list)
    overdue_reported: bool = False
    blocked: str | None = None
    """Why the run may only be aborted: it could not be replayed against its procedure's
    definition after a restart (``hmi.core.run_replay``)."""

    @property
    def step(self) -> Step:
        return self.procedure.steps[self.step_index]

    @property
    def step_number(self) -> int:
        """1-based, as people count steps."""
        return self.step_index + 1

    def step_name(self) -> str:
        return f"step {self.step_number} '{self.step.title}'"

    def missing_data(self) -> list[DataField]:
        return [f for f in self.step.data if f.name not in self.data]

    def unsigned(self) -> list[tuple[int, str, str]]:
        """(index, meaning, role) of the step's signatures not yet given, in order."""
        given = [(s.meaning, s.role) for s in self.signatures]
        out: list[tuple[int, str, str]] = []
        for i, req in enumerate(self.step.signatures):
            if (req.meaning, req.role) in given:
                given.remove((req.meaning, req.role))
            else:
                out.append((i, req.meaning, req.role))
        return out

    def begin_step(self, index: int, now: datetime) -> None:
        if index < self.step_index:
            raise SequenceError("A run only moves forward; it cannot go back to a step.")
        self.step_index = index
        self.step_started_at = now
        self.data = {}
        self.signatures = []
        self.overdue_reported = False

    def check(self, name: str) -> None:
        """Refuse transition ``name`` unless the run's state allows it."""
        sources, _ = TRANSITIONS[name]
        if self.state not in sources:
            allowed = " or ".join(sorted(s.value for s in sources))
            raise SequenceError(
                f"The run is {self.state.value}; it can be {_past(name)} only when {allowed}."
            )

    def transition(self, name: str) -> tuple[RunState, RunState]:
        """Apply transition ``name`` if the run's state allows it; returns (from, to)."""
        self.check(name)
        before, self.state = self.state, TRANSITIONS[name][1]
        return before, self.state


def _past(name: str) -> str:
    return {"start": "started", "hold": "held", "restart": "restarted", "abort": "aborted",
            "complete": "completed"}[name]  # fmt: skip


def validate_value(spec: DataField, value: object) -> str:
    """The entered value as recorded text, or a SequenceError saying what is expected."""
    shown = spec.shown
    if spec.type == "text":
        text = str(value).strip()
        if not text:
            raise SequenceError(f"{shown} is empty; enter a value.")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, text):
            raise SequenceError(f"{shown} {text!r} does not have the expected form {spec.pattern}.")
        return text
    if spec.type == "choice":
        text = str(value).strip()
        if text not in spec.choices:
            raise SequenceError(f"{shown} must be one of: {', '.join(spec.choices)}.")
        return text
    number = _parse_number(spec, value)
    units = f" {spec.units}" if spec.units else ""
    if spec.min is not None and number < spec.min:
        raise SequenceError(f"{shown} {number:g}{units} is below the minimum {spec.min:g}{units}.")
    if spec.max is not None and number > spec.max:
        raise SequenceError(f"{shown} {number:g}{units} is above the maximum {spec.max:g}{units}.")
    return str(int(number)) if spec.type == "int" else repr(number)


def _parse_number(spec: DataField, value: object) -> float:
    kind = "a whole number" if spec.type == "int" else "a number"
    if isinstance(value, bool):
        raise SequenceError(f"{spec.shown} must be {kind}.")
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except ValueError:
        raise SequenceError(f"{spec.shown} must be {kind}, not {value!r}.") from None
    if not math.isfinite(number) or (spec.type == "int" and not number.is_integer()):
        raise SequenceError(f"{spec.shown} must be {kind}, not {value!r}.")
    return number
