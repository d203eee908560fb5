"""Tags as the core sees them: definitions, current values and changes.

A tag is a named point of the plant (``BR101.TEMP``) bound to a device
address by configuration. The tag table keeps the newest value of every tag
with its quality and both timestamps; a *change* is what history, alarms and
screens react to. Values are in engineering units.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

TagScalar = bool | int | float | str


class Quality(enum.Enum):
    GOOD = "GOOD"
    UNCERTAIN = "UNCERTAIN"
    BAD = "BAD"


@dataclass(slots=True)
class TagValue:
    """The newest value of a tag. ``reason`` says why quality is not GOOD."""

    tag: str
    value: TagScalar | None
    quality: Quality
    source_time: datetime | None
    server_time: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TagChange:
    """A logged change of a tag: what history stores and alarms evaluate.

    ``actor`` is ``device:<name>`` for a value from the process, or the user ID
    whose command wrote it; ``unattributed`` marks a change of a writable tag
    that no command of this system explains (a change made at the PLC panel).
    """

    tag: str
    value: TagScalar | None
    quality: Quality
    source_time: datetime | None
    server_time: datetime
    actor: str
    reason: str = ""
    unattributed: bool = False
