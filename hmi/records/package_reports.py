"""The human-readable part of an inspection package: the PDF reports of its period.

An inspector reads the records before checking them, so a package carries the
same PDF reports a QA user would make (``hmi report``) for the package's
period: the audit trail, alarms, signatures, security events, captures, and
one run record per procedure run with an event in the period. Each PDF has
its manifest beside it, and the package's own manifest lists and signs them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from hmi.core.reports import ReportRequest
from hmi.records.report_files import manifest_path
from hmi.records.report_maker import StoreReportMaker
from hmi.store.db import Store
from hmi.store.package import ExtraDocument, Period

PERIOD_KINDS = ("audit", "alarms", "signatures", "security", "captures")


def period_reports(
    store: Store, period: Period, by: tuple[str, str], at: datetime
) -> list[ExtraDocument]:
    """The package's PDF reports, as one extra document for ``build_package``."""
    maker = StoreReportMaker(store)

    def pdf_reports(folder: Path) -> list[Path]:
        written: list[Path] = []
        requests = [ReportRequest(kind, "pdf", period.start, period.end) for kind in PERIOD_KINDS]
        runs = store.query(
            "SELECT DISTINCT run_id FROM procedure_runs WHERE ts >= ? AND ts < ? ORDER BY run_id",
            [period.start, period.end],
        )
        names = [f"{kind}.pdf" for kind in PERIOD_KINDS]
        for (run_id,) in runs:
            requests.append(ReportRequest("run", "pdf", run_id=str(run_id)))
            names.append(f"run-{run_id}.pdf")
        for request, name in zip(requests, names, strict=True):
            out = folder / name
            maker.write_now(request, by, at, out)
            written += [out, manifest_path(out)]
        return written

    return [pdf_reports]
