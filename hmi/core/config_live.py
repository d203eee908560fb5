"""Which parts of an approved configuration version a running system can take at once.

A version approved while the runtime runs is applied in place where that is
safe, and the rest waits for the next start (announced by a system alarm):

* ``procedures/``: reloaded; open runs keep the definition they started with.
  Only when no change to the plant (tags, devices, cameras) is waiting, since
  the procedures were checked against the approved tags.
* ``alarms.toml``: merged into the alarm engine (``hmi.core.alarm_reload``),
  when every tag the alarms name is one the running plant scans.
* ``tags.toml``: applied in place when every change is to a field no driver
  uses (``LIVE_TAG_FIELDS``) and no tag is added or removed.
* ``tags.toml`` (any other change), ``devices.toml``, ``cameras.toml``: the
  drivers, scanner and cameras are rebuilt and reconnect, while the plant is
  *quiet*: no procedure run open and no command waiting for approval (both
  hold tags and devices of the running set). Otherwise they wait.
* everything else (plant, security, terminals, ...) waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hmi.core.alarm_config import ALARMS_FILE
from hmi.core.camera_config import CAMERAS_FILE
from hmi.core.config import PlantConfig
from hmi.core.plant_config import DEVICES_FILE, TagConfig
from hmi.core.procedure_config import PROCEDURES_DIR

TAGS_FILE = "tags.toml"
PLANT_FILES = (TAGS_FILE, DEVICES_FILE, CAMERAS_FILE)
"""The files the drivers, scanner and cameras are built from."""
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
    rescan: bool = False
    """Rebuild the drivers, scanner and cameras for the approved devices, tags and cameras."""
    waiting: tuple[str, ...] = ()
    held: str = ""
    """Why plant files wait although they could be applied (the plant is not quiet)."""


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
    changed: Sequence[str],
    running: PlantConfig,
    approved: PlantConfig,
    *,
    procedures: bool,
    busy: str = "",
) -> LivePlan:
    """The plan for ``changed`` files; ``procedures`` says whether a sequencer runs and
    ``busy`` why the plant is not quiet (empty when it is)."""
    waiting: list[str] = []
    tags = rescan = False
    held = ""
    plant_files = [n for n in changed if n in PLANT_FILES]
    if "plant.toml" in changed:
        busy = "plant.toml, which they are scanned by, waits for the restart"
    if plant_files == [TAGS_FILE] and tags_live(running.tags, approved.tags):
        tags = True
    elif plant_files and not busy:
        rescan = True
    elif plant_files:
        waiting.extend(plant_files)
        held = busy
    scanned = {t.name for t in (approved if rescan else running).tags}
    alarms = False
    if ALARMS_FILE in changed:
        alarms = alarm_tags(approved) <= scanned
        if not alarms:
            waiting.append(ALARMS_FILE)
    proc_files = [n for n in changed if n.startswith(f"{PROCEDURES_DIR}/")]
    plant_waits = bool(plant_files) and not (tags or rescan)
    live_procedures = bool(proc_files) and procedures and not plant_waits
    if proc_files and not live_procedures:
        waiting.extend(proc_files)
    known = {*PLANT_FILES, ALARMS_FILE, *proc_files}
    waiting.extend(n for n in changed if n not in known)
    return LivePlan(live_procedures, alarms, tags, rescan, tuple(sorted(waiting)), held)
