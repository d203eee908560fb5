"""Procedures: the models of ``procedures/*.toml`` (SUP-7, 11.10(f)).

A procedure is an ordered list of steps. Each step says when it may be
completed (preconditions on tags), what the operator must enter, which
commands are allowed while it is the current step, and who must sign it.
The files are checked like the other plant files: every problem names the
file, the key path (``step[2] (focus).preconditions[0]``, counted from 0)
and the reason, and tag names are checked against ``tags.toml`` so a typo
is found by ``hmi config check`` rather than during a batch.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hmi.core.errors import ConfigError
from hmi.core.plant_check import read_toml
from hmi.core.plant_config import NAME_PATTERN, TAG_PATTERN, Problem, TagConfig, label
from hmi.core.preconditions import Condition, ConditionSyntaxError, parse_condition

PROCEDURES_DIR = "procedures"
COMMAND_KINDS = ("write_setpoint", "capture", "operate")
"""Command kinds a step may allow; writes and operations name a writable tag."""
Role = Literal["operator", "supervisor", "engineer", "qa", "admin"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataField(_Model):
    """A value the operator enters in a step (a sample ID, a lot number)."""

    name: str = Field(pattern=NAME_PATTERN)
    label: str = ""
    type: Literal["text", "int", "float", "choice"] = "text"
    pattern: str | None = Field(None, description="text: a regular expression the whole must match")
    min: float | None = None
    max: float | None = None
    choices: list[str] = Field(default_factory=list)
    units: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> DataField:
        if self.pattern is not None:
            if self.type != "text":
                raise ValueError("pattern applies to text fields")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from exc
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError("min and max apply to int and float fields")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a choice field lists its choices, and only a choice field does")
        return self

    @property
    def shown(self) -> str:
        return self.label or self.name


class StepSignature(_Model):
    """One signature a step needs: its meaning and the role of who may give it."""

    meaning: str = Field(min_length=1)
    role: Role


class Step(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    title: str = Field(min_length=1)
    preconditions: list[str] = Field(default_factory=list)
    data: list[DataField] = Field(default_factory=list)
    commands: list[str] = Field(
        default_factory=list, description="kind:target, e.g. write_setpoint:MIC1.Illumination"
    )
    signatures: list[StepSignature] = Field(default_factory=list)
    time_limit_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Step:
        names = [f.name for f in self.data]
        if len(set(names)) != len(names):
            raise ValueError("data field names must be unique in a step")
        for c in self.commands:
            kind, _, target = c.partition(":")
            if kind not in COMMAND_KINDS or not re.fullmatch(TAG_PATTERN, target):
                raise ValueError(
                    f"command {c!r} must be kind:target with kind one of {', '.join(COMMAND_KINDS)}"
                )
        return self

    def allows(self, kind: str, target: str) -> bool:
        return f"{kind}:{target}" in self.commands


def _hold_roles() -> list[Role]:
    return ["operator", "supervisor"]


def _abort_roles() -> list[Role]:
    return ["supervisor"]


class Procedure(_Model):
    id: str = Field(pattern=NAME_PATTERN)
    title: str = Field(min_length=1)
    version: str = Field(min_length=1)
    hold_roles: list[Role] = Field(
        default_factory=_hold_roles,
        description="roles that may hold and restart a run",
    )
    abort_roles: list[Role] = Field(
        default_factory=_abort_roles, description="roles that may abort a run"
    )
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_steps(self) -> Procedure:
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"step ids must be unique; repeated: {', '.join(dupes)}")
        return self

    def conditions(self, index: int) -> list[Condition]:
        """The parsed preconditions of step ``index`` (checked when the file was loaded)."""
        return [parse_condition(text) for text in self.steps[index].preconditions]


def check_procedure(
    proc: Procedure,
    file: str,
    tags: Mapping[str, TagConfig],
    meanings: Collection[str],
    cameras: Collection[str] | None = None,
) -> list[Problem]:
    """Problems of a procedure that need the tag list: conditions, command targets, meanings."""
    problems: list[Problem] = []
    for i, step in enumerate(proc.steps):
        where = label("step", i, step.id)
        for k, text in enumerate(step.preconditions):
            try:
                parse_condition(text, tags)
            except ConditionSyntaxError as exc:
                problems.append(Problem(file, f"{where}.preconditions[{k}]", f"{text!r}: {exc}"))
        for k, command in enumerate(step.commands):
            kind, _, target = command.partition(":")
            if kind == "capture":
                if cameras and target not in cameras:
                    why = f"unknown camera {target!r}; cameras are {', '.join(cameras)}"
                    problems.append(Problem(file, f"{where}.commands[{k}]", why))
                continue
            tag = tags.get(target)
            if tag is None:
                problems.append(Problem(file, f"{where}.commands[{k}]", f"unknown tag {target!r}"))
            elif not tag.writable:
                why = f"{target} is not writable (tags.toml: writable = true)"
                problems.append(Problem(file, f"{where}.commands[{k}]", why))
        for k, sig in enumerate(step.signatures):
            if sig.meaning not in meanings:
                why = f"meaning {sig.meaning!r} is not one of {', '.join(meanings)}"
                problems.append(Problem(file, f"{where}.signatures[{k}].meaning", why))
    return problems


def read_procedures(
    directory: Path,
    tags: list[TagConfig],
    meanings: Collection[str],
    problems: list[Problem],
    cameras: Collection[str] | None = None,
) -> list[Procedure]:
    """Every ``procedures/*.toml`` of ``directory`` (none if the folder is missing).

    Problems are added to ``problems`` so they are reported in the same round
    as those of the other files. Capture targets are checked against
    ``cameras`` when cameras are configured.
    """
    folder = directory / PROCEDURES_DIR
    if not folder.is_dir():
        return []
    by_tag = {t.name: t for t in tags}
    procedures: list[Procedure] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")):
        file = f"{PROCEDURES_DIR}/{path.name}"
        raw = read_toml(path)
        try:
            proc = Procedure.model_validate(raw)
        except ValidationError as exc:
            for item in exc.errors():
                key = _key_path(raw, item["loc"])
                problems.append(Problem(file, key, _REASONS.get(item["type"], item["msg"])))
            continue
        if proc.id in seen:
            why = f"procedure id {proc.id!r} is also used by {seen[proc.id]}"
            problems.append(Problem(file, "id", why))
        seen.setdefault(proc.id, file)
        problems += check_procedure(proc, file, by_tag, meanings, cameras)
        procedures.append(proc)
    return procedures


def load_procedures(
    directory: Path,
    tags: list[TagConfig],
    meanings: Collection[str],
    cameras: Collection[str] | None = None,
) -> list[Procedure]:
    """The procedures of ``directory``, or a ConfigError naming every problem."""
    problems: list[Problem] = []
    procedures = read_procedures(directory, tags, meanings, problems, cameras)
    if problems:
        raise ConfigError("\n".join(p.render(directory) for p in problems))
    return procedures


_REASONS = {"missing": "required key is missing", "extra_forbidden": "unknown key"}


def _key_path(raw: object, loc: tuple[int | str, ...]) -> str:
    """``step[2] (focus).data[0] (sample_id).pattern`` from pydantic's location of an error."""
    parts: list[str] = []
    node = raw
    for p in loc:
        if isinstance(p, int) and parts:
            entry = node[p] if isinstance(node, list) and p < len(node) else None
            name = (entry.get("id") or entry.get("name")) if isinstance(entry, dict) else None
            kind = parts.pop()
            parts.append(label("step" if kind == "steps" else kind, p, name))
        else:
            parts.append(str(p))
        if isinstance(node, dict):
            node = node.get(str(p))
        elif isinstance(node, list) and isinstance(p, int) and p < len(node):
            node = node[p]
        else:
            node = None
    return ".".join(parts) or "(top level)"
