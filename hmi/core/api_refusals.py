"""Refusals of the Terminal API's desks, recorded before the person sees them.

A refused request is evidence too (who tried what, where, and why it was
refused): 11.10(e) asks for a record of operator actions, not only of
successful ones. Every desk records its refusals here.
"""

from __future__ import annotations

from hmi.core.errors import HmiError
from hmi.core.identity import Session
from hmi.core.ports import Recorder
from hmi.core.records import AuditEntry, Origin


async def record_refusal(
    recorder: Recorder,
    session: Session,
    origin: Origin,
    action: str,
    target: str,
    error: HmiError,
    reason: str | None = None,
) -> HmiError:
    """Commit the refusal of ``action`` on ``target``; returns ``error`` for the caller to raise."""
    entry = AuditEntry(
        action,
        "refused",
        session.user_id if session.active else None,
        session.user.full_name,
        origin,
        target=target,
        reason=reason or None,
        detail=f"{error.title}: {error.message}"[:2000],
    )
    await recorder.commit([entry])
    return error
