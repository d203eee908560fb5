"""The reports desk: human-readable and electronic copies of the records (11.10(b)).

Making a report is reading records, so it needs ``view_records``; and a copy
that leaves the system is itself a regulated act, so every export is recorded
in the audit trail (``report_exported``: who exported what, in which format,
to which file, how many rows, the file's SHA-256), and so is every refusal.
A report whose export cannot be recorded is removed again: nothing leaves
unrecorded. The CLI (``hmi report``) and the terminals use this same desk.
"""

from __future__ import annotations

import json
from pathlib import Path

from hmi.core.api_refusals import record_refusal
from hmi.core.clock import Clock
from hmi.core.errors import HmiError
from hmi.core.identity import IdentityService, Session
from hmi.core.ports import Recorder, ReportMaker
from hmi.core.records import AuditEntry, Origin
from hmi.core.reports import ReportOutcome, ReportRequest

VIEW_RECORDS = "view_records"
EXPORTED = "report_exported"


class ReportDesk:
    def __init__(
        self,
        identity: IdentityService,
        recorder: Recorder,
        maker: ReportMaker,
        clock: Clock,
        reports_dir: Path | None = None,
    ) -> None:
        self.identity = identity
        self.recorder = recorder
        self.maker = maker
        self.clock = clock
        self.reports_dir = reports_dir
        """Where reports asked for at a terminal are written (``DATA/reports``)."""

    async def export(
        self,
        session: Session,
        origin: Origin,
        request: ReportRequest,
        out: str,
        force: bool = False,
    ) -> ReportOutcome:
        """Write the report to ``out`` (and ``out.manifest.json``) and record the export."""
        target = request.run_id or request.kind
        try:
            current = self.identity.require_permission(session, VIEW_RECORDS)
            request.check()
            by = (current.user_id, current.user.full_name)
            outcome = await self.maker.make(request, by, self.clock.now(), out, force)
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, EXPORTED, f"report:{target}", exc
            ) from None
        detail = {
            "filters": request.filters(),
            "format": request.fmt,
            "out": outcome.path,
            "manifest": outcome.manifest_path,
            "rows": outcome.row_count,
            "sha256": outcome.sha256,
            "integrity_ok": outcome.integrity_ok,
        }
        entry = AuditEntry(
            EXPORTED,
            "done",
            current.user_id,
            current.user.full_name,
            origin,
            target=f"report:{target}",
            run_id=request.run_id,
            detail=json.dumps(detail, ensure_ascii=False)[:4000],
        )
        try:
            await self.recorder.commit([entry])
        except Exception:
            self.maker.discard(outcome)
            raise
        return outcome

    async def report(
        self,
        session: Session,
        origin: Origin,
        request: ReportRequest,
    ) -> ReportOutcome:
        """A terminal's report: written into the plant's reports folder under a new name."""
        if self.reports_dir is None:
            error = HmiError("This terminal has no reports folder.", title="Report refused")
            raise await record_refusal(
                self.recorder, session, origin, EXPORTED, f"report:{request.kind}", error
            )
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        name = request.run_id if request.kind == "run" and request.run_id else request.kind
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(name))
        out = self.reports_dir / f"{safe}-{session.user_id}-{stamp}.{request.fmt}"
        return await self.export(session, origin, request, str(out))
