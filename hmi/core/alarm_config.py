"""Alarm configuration: the model of ``alarms.toml``.

Alarms are under change control like tags, so they live in the configuration
directory and are checked with it: every problem names the file, the key
path as the engineer wrote it (``alarm[2] (BR101.TEMP_PV).h``) and the
reason. An alarm refers to tags, so the checks that need the tag list run
after ``tags.toml`` has been read (``read_alarms``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hmi.core.plant_check import read_toml
from hmi.core.plant_config import Problem, TagConfig, label

ALARMS_FILE = "alarms.toml"
LIMITS = ("hh", "h", "l", "ll")
"""Analog limits from the highest to the lowest."""

Priority = int
"""1 critical, 2 high, 3 medium, 4 low."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """``tag`` compared with ``value`` (``==`` unless ``op`` says otherwise)."""

    tag: str
    op: Literal["==", "!=", "<", "<=", ">", ">="] = "=="
    value: bool | int | float | str

    def holds(self, current: object) -> bool:
        """Whether the condition is true of ``current``; an unknown value never suppresses."""
        if current is None:
            return False
        try:
            if self.op == "==":
                return bool(current == self.value)
            if self.op == "!=":
                return bool(current != self.value)
            a, b = float(current), float(self.value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


class AlarmConfig(_Model):
    """One ``[[alarm]]`` entry: an analog tag with up to four limits, or a discrete state."""

    tag: str
    kind: Literal["analog", "discrete"] = "analog"
    hh: float | None = None
    h: float | None = None
    l: float | None = None  # noqa: E741 - the ISA-18.2 name of the low limit
    ll: float | None = None
    deadband: float = Field(0.0, ge=0, description="engineering units a value must fall back")
    on_delay_s: float = Field(0.0, ge=0, le=3600)
    off_delay_s: float = Field(0.0, ge=0, le=3600)
    priority: Priority = Field(3, ge=1, le=4, description="default priority of every limit")
    priority_hh: Priority | None = Field(None, ge=1, le=4)
    priority_h: Priority | None = Field(None, ge=1, le=4)
    priority_l: Priority | None = Field(None, ge=1, le=4)
    priority_ll: Priority | None = Field(None, ge=1, le=4)
    state: bool = Field(True, description="discrete: the value of the tag that is the alarm")
    message: str = ""
    suppress_when: Condition | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AlarmConfig:
        limits = [(name, getattr(self, name)) for name in LIMITS if getattr(self, name) is not None]
        if self.kind == "analog":
            if not limits:
                raise ValueError("an analog alarm needs at least one of hh, h, l, ll")
            for (upper, a), (lower, b) in itertools.pairwise(limits):
                if not a > b:
                    raise ValueError(
                        f"limits out of order: {upper} = {a} must be above {lower} = {b}"
                    )
        elif limits:
            raise ValueError("a discrete alarm has no limits; it uses 'state'")
        return self

    def limits(self) -> list[tuple[str, float, int]]:
        """(limit name, value, priority) of each configured limit, highest first."""
        out = []
        for name in LIMITS:
            value = getattr(self, name)
            if value is not None:
                out.append(
                    (name.upper(), float(value), getattr(self, f"priority_{name}") or self.priority)
                )
        return out


class AlarmsFile(_Model):
    alarm: list[AlarmConfig] = Field(default_factory=list)


def _reason(item: Any) -> str:
    if item["type"] == "extra_forbidden":
        return f"unknown key; alarm keys are {', '.join(AlarmConfig.model_fields)}"
    if item["type"] == "missing":
        return "required key is missing"
    return str(item["msg"]).removeprefix("Value error, ")


def check_alarm(alarm: AlarmConfig, tags: Mapping[str, TagConfig]) -> list[tuple[str, str]]:
    """(key, reason) of each problem between ``alarm`` and the tags it names."""
    found: list[tuple[str, str]] = []
    tag = tags.get(alarm.tag)
    if tag is None:
        found.append(("tag", f"unknown tag {alarm.tag!r}; tags are defined in tags.toml"))
    elif alarm.kind == "analog" and not tag.numeric:
        found.append(("kind", f"tag {alarm.tag!r} is {tag.type}, an analog alarm needs a number"))
    elif alarm.kind == "discrete" and tag.type != "bool":
        found.append(("kind", f"tag {alarm.tag!r} is {tag.type}, a discrete alarm needs a bool"))
    if alarm.suppress_when is not None and alarm.suppress_when.tag not in tags:
        found.append(("suppress_when.tag", f"unknown tag {alarm.suppress_when.tag!r}"))
    return found


def read_alarms(
    directory: Path, tags: Sequence[TagConfig], problems: list[Problem]
) -> list[AlarmConfig]:
    """The alarms of ``alarms.toml`` that passed every check; problems are added to ``problems``."""
    file = directory / ALARMS_FILE
    data = read_toml(file) if file.exists() else {}
    for other in data:
        if other != "alarm":
            problems.append(Problem(ALARMS_FILE, other, "unknown key; alarms.toml holds [[alarm]]"))
    raw = data.get("alarm", [])
    if not isinstance(raw, list):
        problems.append(Problem(ALARMS_FILE, "alarm", "write each entry as an [[alarm]] table"))
        return []
    by_name = {t.name: t for t in tags}
    alarms: list[AlarmConfig] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(raw):
        name = entry.get("tag") if isinstance(entry, dict) else None
        where = label("alarm", i, name)
        if not isinstance(entry, dict):
            problems.append(Problem(ALARMS_FILE, where, "must be a table"))
            continue
        try:
            alarm = AlarmConfig.model_validate(entry)
        except ValidationError as exc:
            for item in exc.errors():
                loc = ".".join(str(p) for p in item["loc"])
                key = f"{where}.{loc}" if loc else where
                problems.append(Problem(ALARMS_FILE, key, _reason(item)))
            continue
        found = check_alarm(alarm, by_name)
        for key, reason in found:
            problems.append(Problem(ALARMS_FILE, f"{where}.{key}", reason))
        identity = (alarm.tag, alarm.kind)
        if identity in seen:
            problems.append(
                Problem(ALARMS_FILE, where, f"a second {alarm.kind} alarm on {alarm.tag}")
            )
        seen.add(identity)
        if not found:
            alarms.append(alarm)
    return alarms
