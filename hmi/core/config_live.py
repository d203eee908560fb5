"""Which parts of an approved configuration version a running system can take at once.

A version approved while the runtime runs is applied in place where that is
safe, and the rest waits for the next start (announced by a system alarm):

* ``procedures/``: reloaded; open runs keep the definition they started with.
  Only when no change to the tag set is waiting, since the procedures were
  checked against the approved tags.
* ``alarms.toml``: merged into the alarm engine (``hmi.core.alarm_reload``),
  when every tag the alarms name is one the running plant scans.
* ``tags.toml``: applied in place when every change is to a field no driver
  uses (``LIVE_TAG_FIELDS``) and no tag is added or removed; any other tag
  change (address, device, type, scaling, scan class, writable, a new or
  removed tag) waits for the restart, when the drivers connect afresh.
* everything else (devices, cameras, plant, security, terminals, ...) waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hmi.core.alarm_config import ALARMS_FILE
from hmi.core.config import PlantConfig
from hmi.core.plant_config import TagConfig
from hmi.core.procedure_config import PROCEDURES_DIR

TAGS_FILE = "tags.toml"
LIVE_TAG_FIELDS = frozenset(
    {
        "description", "units", "low", "high", "rate_of_change", "esign", "area",
        "equipment", "deadband", "deadband_percent",
    }
)  # fmt: skip
"""Tag fields read by screens, commands and history but by no driver or scanner."""


@dataclass(frozen=True, slots=True)
class LivePlan:
    """What to apply now; ``waiting`` names each changed file that takes effect at restart."""

    procedures: bool = False
    alarms: bool = False
    tags: bool = False
    waiting: tuple[str, ...] = ()


def tags_live(running: Sequence[TagConfig], approved: Sequence[TagConfig]) -> bool:
    """Whether ``approved`` differs from ``running`` only in fields no driver uses."""
    old = {t.name: t for t in running}
    new = {t.name: t for t in approved}
    if set(old) != set(new):
        return False
    scan_side = set(TagConfig.model_fields) - LIVE_TAG_FIELDS
    return all(
        old[name].model_dump(include=scan_side) == new[name].model_dump(include=scan_side)
        for name in new
    )


def alarm_tags(config: PlantConfig) -> set[str]:
    """Every tag an alarm is on or suppressed by."""
    out = {a.tag for a in config.alarms}
    out |= {a.suppress_when.tag for a in config.alarms if a.suppress_when is not None}
    return out


def plan_apply(
    changed: Sequence[str], running: PlantConfig, approved: PlantConfig, *, procedures: bool
) -> LivePlan:
    """The plan for ``changed`` files; ``procedures`` says whether a sequencer runs."""
    waiting: list[str] = []
    tags = False
    if TAGS_FILE in changed:
        tags = tags_live(running.tags, approved.tags)
        if not tags:
            waiting.append(TAGS_FILE)
    tag_set_waits = bool(waiting) or "devices.toml" in changed
    scanned = {t.name for t in running.tags}
    alarms = False
    if ALARMS_FILE in changed:
        alarms = alarm_tags(approved) <= scanned
        if not alarms:
            waiting.append(ALARMS_FILE)
    proc_files = [n for n in changed if n.startswith(f"{PROCEDURES_DIR}/")]
    live_procedures = bool(proc_files) and procedures and not tag_set_waits
    if proc_files and not live_procedures:
        waiting.extend(proc_files)
    known = {TAGS_FILE, ALARMS_FILE, *proc_files}
    waiting.extend(n for n in changed if n not in known)
    return LivePlan(live_procedures, alarms, tags, tuple(sorted(waiting)))
