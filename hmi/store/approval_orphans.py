"""Approval requests the records leave open, found at start-up and withdrawn.

Approvals are a view over chained audit rows (migration 0006). A request is
closed by an approval, a rejection, an expiry, a withdrawal, or a refusal
that carries the deciding supervisor's signature (approval re-checked the
command and refused it; ``ApprovalQueue.approve``). Refusals without that
signature (a wrong password, a self-approval) leave it open, as they do in
the running queue. Call this before the approval queue takes new requests:
every request it finds open is then one the previous runtime left behind.
"""

from __future__ import annotations

import asyncio

from hmi.core.approval_restart import RESTARTED, OpenRequest, withdrawal
from hmi.core.records import Origin
from hmi.store.recorder import StoreRecorder

_OPEN = """
    SELECT r.approval_id, r.actor_id, r.actor_name, r.terminal_id, r.source_address, r.target,
           r.old_value, r.new_value, r.units, r.reason, r.signature_ids, r.run_id, r.step
    FROM approvals r
    WHERE r.event = 'requested' AND NOT EXISTS (
        SELECT 1 FROM approvals d
        WHERE d.approval_id = r.approval_id AND d.seq > r.seq
          AND (d.event IN ('approved', 'rejected', 'expired', 'withdrawn')
               OR (d.event = 'refused'
                   AND coalesce(d.signature_ids, '') <> coalesce(r.signature_ids, ''))))
    ORDER BY r.seq
"""


async def open_requests(recorder: StoreRecorder) -> list[OpenRequest]:
    rows = await asyncio.to_thread(recorder.store.query, _OPEN)
    return [
        OpenRequest(
            approval_id=r[0],
            requester_id=r[1],
            requester_name=r[2],
            origin=Origin(r[3] or "", r[4] or ""),
            target=r[5],
            old_value=r[6],
            new_value=r[7],
            units=r[8],
            reason=r[9],
            signature_ids=tuple(filter(None, (r[10] or "").split(","))),
            run_id=r[11],
            step=r[12],
        )
        for r in rows
    ]


async def withdraw_orphaned_approvals(
    recorder: StoreRecorder, why: str = RESTARTED
) -> list[OpenRequest]:
    """Record every request left open as withdrawn (supervisors notified); returns them."""
    found = await open_requests(recorder)
    for request in found:
        await recorder.commit(withdrawal(request, why))
    return found
