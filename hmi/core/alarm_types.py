"""The vocabulary of alarms: states, priorities, who acted, and one journal transition.

Kept apart from the engine so that the journal's store adapter and screens
can speak about alarms without the evaluation logic.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hmi.core.records import Record


class AlarmState(enum.Enum):
    NORMAL = "NORMAL"
    UNACK_ACTIVE = "UNACK_ACTIVE"
    ACK_ACTIVE = "ACK_ACTIVE"
    RTN_UNACK = "RTN_UNACK"
    SHELVED = "SHELVED"
    SUPPRESSED = "SUPPRESSED"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


ANNUNCIATED = (AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE, AlarmState.RTN_UNACK)
HIDDEN = (AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE)
PRIORITY_NAMES = {1: "critical", 2: "high", 3: "medium", 4: "low"}
COMM_PRIORITY = 2


def priority_label(priority: int) -> str:
    """``!!!! P1``: glyphs for a quick look and text for anyone who cannot rely on colour."""
    return f"{'!' * (5 - priority)} P{priority}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused a transition, from where, and why; the process itself for scan-path ones."""

    actor_id: str
    actor_name: str | None = None
    terminal_id: str | None = None
    source: str | None = None
    comment: str | None = None
    signature_ids: tuple[str, ...] = ()


SYSTEM = Actor("system", "Custos alarm engine")


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One journal row: the alarm moved from one state to another, and why."""

    time: datetime
    alarm_id: str
    tag: str
    kind: str
    event: str
    from_state: AlarmState
    to_state: AlarmState
    value: str | None
    limit_name: str | None
    limit_value: str | None
    priority: int
    message: str
    actor: Actor
    shelved_until: datetime | None = None


class AlarmJournal(Protocol):
    def record_soon(self, transitions: Sequence[AlarmTransition]) -> None:
        """Queue transitions from the scan path; must not block."""
        ...

    async def commit(
        self, transitions: Sequence[AlarmTransition], records: Sequence[Record]
    ) -> None:
        """Write transitions and their audit/signature records together; return once durable."""
        ...
