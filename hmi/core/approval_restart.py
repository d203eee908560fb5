"""Approval requests left open by a runtime that did not stop cleanly (SUP-8).

The approval queue lives in memory. A clean stop records every undecided
request as withdrawn (``ApprovalQueue.withdraw_all``); after a crash nobody
did, and the request would stay "requested" in the records for ever. At the
next start such a request cannot be decided any more (its prepared command
is gone), so it is recorded as withdrawn, with the same details as the
request, and supervisors are notified, as after a clean stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from hmi.core.records import AuditEntry, NotificationEntry, Origin, Record

SYSTEM_ID = "system"
SYSTEM_NAME = "Custos runtime"
RESTARTED = "the runtime restarted"


@dataclass(frozen=True)
class OpenRequest:
    """An ``approval_requested`` record with no decision, expiry or withdrawal after it."""

    approval_id: str
    requester_id: str | None
    requester_name: str | None
    origin: Origin
    target: str | None
    old_value: str | None
    new_value: str | None
    units: str | None
    reason: str | None
    signature_ids: tuple[str, ...]
    run_id: str | None
    step: str | None

    def describe(self) -> str:
        units = f" {self.units}" if self.units else ""
        return (
            f"{self.requester_name} ({self.requester_id}) asked to change {self.target}: "
            f"{self.old_value}{units} → {self.new_value}{units}, because {self.reason!r}"
        )


def withdrawal(request: OpenRequest, why: str = RESTARTED) -> list[Record]:
    """The records that close ``request``: an ``approval_withdrawn`` row and a notice."""
    row = AuditEntry(
        "approval_withdrawn",
        "withdrawn",
        SYSTEM_ID,
        SYSTEM_NAME,
        request.origin,
        target=request.target,
        old_value=request.old_value,
        new_value=request.new_value,
        units=request.units,
        reason=request.reason,
        signature_ids=request.signature_ids,
        run_id=request.run_id,
        step=request.step,
        detail=f"approval {request.approval_id}: {why}",
    )
    text = f"Approval request withdrawn ({why}): {request.describe()}."
    notice = NotificationEntry("supervisor", "approval_withdrawn", text, request.approval_id)
    return [row, notice]
