"""``[change_control]`` of plant.toml: which changes need whose approval (SUP-12, 11.10(k)).

Every change is signed by its author (meaning ``authored``). The kinds of
file listed in ``qa_approval_for`` also need a QA signature (meaning
``approved``) before they take effect. A change to the security policy or
to what the records hold (plant.toml's ``[commands]`` signature policy and
this ``[change_control]`` table itself) always needs both an administrator
and QA, two people other than the author. The policy that applies is the
approved one, never the proposed one: a change cannot relax its own review.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hmi.core.alarm_config import ALARMS_FILE
from hmi.core.camera_config import CAMERAS_FILE
from hmi.core.plant_config import DEVICES_FILE, TAGS_FILE
from hmi.core.procedure_config import PROCEDURES_DIR

FileKind = Literal["plant", "devices", "tags", "cameras", "alarms", "procedures", "security"]

KIND_OF_FILE: dict[str, FileKind] = {
    "plant.toml": "plant",
    DEVICES_FILE: "devices",
    TAGS_FILE: "tags",
    CAMERAS_FILE: "cameras",
    ALARMS_FILE: "alarms",
    "security.toml": "security",
}

RECORDS_KEYS = {"plant.toml": ("commands", "change_control")}
"""Top-level keys whose change alters what is signed and recorded: admin and QA approve."""

HOT_KINDS: tuple[FileKind, ...] = ("tags", "alarms", "procedures")
"""Kinds a running system could take without a restart."""


def _default_qa() -> list[FileKind]:
    return ["tags", "alarms", "procedures", "security"]


class ChangeControlPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    qa_approval_for: list[FileKind] = Field(
        default_factory=_default_qa,
        description="kinds of configuration file whose changes need QA's approval",
    )


def file_kind(name: str) -> FileKind:
    """The kind of a configuration file, as ``qa_approval_for`` names it."""
    if name.startswith(f"{PROCEDURES_DIR}/"):
        return "procedures"
    return KIND_OF_FILE[name]
