"""Make a report from the store: read the rows, write the copy and its manifest.

This is the core's ``ReportMaker`` port (hmi/core/ports.py). The file and its
manifest are written under temporary names in the target folder and then
renamed, so a failed or interrupted export leaves no half-written report
under the name asked for. An existing file is only replaced when asked to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hmi.core.errors import HmiError
from hmi.core.reports import ReportData, ReportOutcome, ReportRequest
from hmi.records.report_files import (
    file_sha256,
    manifest_path,
    write_csv,
    write_json,
    write_manifest,
    write_parquet,
)
from hmi.records.report_pdf import write_pdf
from hmi.store.db import Store
from hmi.store.report_read import read_report

REPORTS_FOLDER = "reports"
"""Below the data directory: where reports asked for at a terminal are written."""


def _refused(message: str) -> HmiError:
    return HmiError(message, title="Report not written")


def check_target(out: Path, force: bool) -> None:
    """Refuse, before reading anything, a target that cannot or should not be written."""
    folder = out.parent
    if not folder.is_dir():
        raise _refused(f"--out {out}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise _refused(f"--out {out}: the folder {folder} is not writable.")
    if out.is_dir():
        raise _refused(f"--out {out} is a folder; name a file.")
    for path in (out, manifest_path(out)):
        if path.exists() and not force:
            raise _refused(f"--out {out}: {path} exists; pass --force to replace it.")


class StoreReportMaker:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _read(self, request: ReportRequest, by: tuple[str, str], at: datetime) -> ReportData:
        with self.store.reader() as cur:
            return read_report(cur, self.store.keys, request, by, at)

    def _write(self, report: ReportData, out: Path) -> ReportOutcome:
        writers: dict[str, Callable[[ReportData, Path], None]] = {
            "pdf": lambda r, p: write_pdf(r, p, self.store.data_dir.root),
            "csv": write_csv,
            "json": write_json,
            "parquet": write_parquet,
        }
        temps: list[Path] = []
        try:
            data = _temp(out, temps)
            writers[report.request.fmt](report, data)
            sha = file_sha256(data)
            side = _temp(out, temps)
            write_manifest(report, side, out.name, sha)
            os.replace(data, out)
            os.replace(side, manifest_path(out))
        except OSError as exc:
            raise _refused(f"--out {out} could not be written: {exc.strerror or exc}.") from exc
        finally:
            for temp in temps:
                with contextlib.suppress(OSError):
                    temp.unlink(missing_ok=True)
        return ReportOutcome(
            str(out),
            str(manifest_path(out)),
            report.request.kind,
            report.request.fmt,
            report.row_count,
            sha,
            report.integrity_ok,
            report.integrity_summary,
        )

    async def make(
        self,
        request: ReportRequest,
        by: tuple[str, str],
        at: datetime,
        out: str,
        force: bool,
    ) -> ReportOutcome:
        target = Path(out).expanduser().absolute()
        check_target(target, force)

        def work() -> ReportOutcome:
            return self._write(self._read(request, by, at), target)

        return await asyncio.to_thread(work)

    def write_now(
        self, request: ReportRequest, by: tuple[str, str], at: datetime, out: Path
    ) -> ReportOutcome:
        """Read and write one report in this thread (a caller already off the event loop)."""
        request.check()
        return self._write(self._read(request, by, at), out)

    def discard(self, outcome: ReportOutcome) -> None:
        """Remove a report whose export could not be recorded."""
        for path in (outcome.path, outcome.manifest_path):
            with contextlib.suppress(OSError):
                Path(path).unlink(missing_ok=True)


def _temp(out: Path, temps: list[Path]) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    temps.append(Path(name))
    return Path(name)
