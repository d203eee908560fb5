"""SUP-8 after a crash: approval requests the records leave undecided are withdrawn at start.

The rows are written as ``ApprovalQueue`` writes them (hmi/core/approvals.py): audit rows
whose action starts with ``approval_`` and whose detail begins ``approval <id>``.
"""

from __future__ import annotations

from custos_testkit import ORIGIN

from hmi.bootstrap import Services
from hmi.core.records import AuditEntry
from hmi.store.approval_orphans import withdraw_orphaned_approvals
from hmi.store.verify import verify_data_dir


def row(
    event: str, approval_id: str, sigs: tuple[str, ...] = ("s-op",), **kw: object
) -> AuditEntry:
    outcome = {"requested": "pending", "refused": "refused", "expired": "expired",
               "withdrawn": "withdrawn"}.get(event, "done")  # fmt: skip
    return AuditEntry(
        f"approval_{event}", outcome, "op1", "Olga Operator", ORIGIN, target="BR101.TEMP_SP",
        old_value="37.0", new_value="37.5", units="°C", reason="batch record 12",
        signature_ids=sigs, run_id="run-1", step="4 Temperature setpoint",
        detail=f"approval {approval_id}: {kw.get('detail', event)}",
    )  # fmt: skip


async def test_undecided_requests_are_withdrawn_once_with_their_details(
    services: Services,
) -> None:
    rec = services.recorder
    await rec.commit([row("requested", f"a{i:02x}") for i in range(7)])
    await rec.commit(
        [
            row("approved", "a01", ("s-op", "s-sup")),
            row("rejected", "a02", ("s-op", "s-sup")),
            row("expired", "a03"),
            row("withdrawn", "a04"),
            row("refused", "a05", detail="wrong password"),  # no decision: still open
            row("refused", "a06", ("s-op", "s-sup"), detail="TEMP_SP is now 38"),  # closed
        ]
    )
    found = await withdraw_orphaned_approvals(rec)
    assert [r.approval_id for r in found] == ["a00", "a05"]
    rows = services.store.query(
        "SELECT approval_id, actor_id, outcome, terminal_id, target, old_value, new_value, "
        "units, reason, signature_ids, run_id, step, detail FROM approvals "
        "WHERE event = 'withdrawn' AND approval_id IN ('a00', 'a05') ORDER BY seq"
    )
    assert [r[:3] for r in rows] == [("a00", "system", "withdrawn"), ("a05", "system", "withdrawn")]
    assert rows[0][3:12] == (ORIGIN.terminal_id, "BR101.TEMP_SP", "37.0", "37.5", "°C",
                             "batch record 12", "s-op", "run-1",
                             "4 Temperature setpoint")  # fmt: skip
    assert rows[0][12] == "approval a00: the runtime restarted"
    notes = await rec.notifications("supervisor")
    assert sorted(n[4] for n in notes if n[2] == "approval_withdrawn") == ["a00", "a05"]
    assert "Olga Operator (op1) asked to change BR101.TEMP_SP: 37.0 °C → 37.5 °C" in notes[0][3]
    assert await withdraw_orphaned_approvals(rec) == []
    root = services.store.data_dir.root
    services.close()
    assert verify_data_dir(root).ok
