"""Reports on the records: what is asked for, what a report holds, what came of writing it.

A report is a copy of records for people who were not at the terminal (11.10(b)):
QA, an inspector, the batch record. It carries everything needed to trust it
on paper: the period and filters it was made for, who made it and when, every
signature its rows reference with the manifestation 11.50 requires, and the
integrity check of exactly the rows it includes, against a signed checkpoint.
These are plain data so that the store can fill them and the writers (PDF,
CSV, JSON, Parquet) and the Terminal API can carry them without either
knowing the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hmi.core.clock import local_display
from hmi.core.errors import HmiError

Plain = str | int | float | bool | datetime | None

KINDS = ("audit", "alarms", "signatures", "security", "captures", "run")
FORMATS = ("pdf", "csv", "json", "parquet")

TITLES = {
    "audit": "Audit trail",
    "alarms": "Alarm journal",
    "signatures": "Electronic signatures",
    "security": "Security events (user log)",
    "captures": "Camera captures",
    "run": "Procedure run record",
}


@dataclass(frozen=True)
class ReportRequest:
    """What to report: one kind of record over a period, or one procedure run."""

    kind: str
    fmt: str = "pdf"
    start: datetime | None = None
    end: datetime | None = None
    user_id: str | None = None
    run_id: str | None = None

    def check(self) -> None:
        """Refuse a request that cannot make a sensible report, naming what is wrong."""
        if self.kind not in KINDS:
            raise HmiError(
                f"There is no report {self.kind!r}; choose one of {', '.join(KINDS)}.",
                title="Report refused",
            )
        if self.fmt not in FORMATS:
            raise HmiError(
                f"There is no format {self.fmt!r}; choose one of {', '.join(FORMATS)}.",
                title="Report refused",
            )
        for name, when in (("from", self.start), ("to", self.end)):
            if when is not None and when.tzinfo is None:
                raise HmiError(f"The {name} time needs a time zone.", title="Report refused")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise HmiError(
                "The period must end (to) after it starts (from).", title="Report refused"
            )
        if self.kind == "run" and not self.run_id:
            raise HmiError("A run report needs the run ID.", title="Report refused")

    def filters(self) -> dict[str, str]:
        """The filters as shown on the report and recorded with the export."""
        if self.kind == "run":
            return {"run": str(self.run_id)}
        out: dict[str, str] = {}
        out["from"] = local_display(self.start) if self.start else "(the first record)"
        out["to"] = local_display(self.end) if self.end else "(the time of the report)"
        if self.user_id:
            out["user"] = self.user_id
        return out


@dataclass(frozen=True)
class Section:
    """A titled table of rows from one QA view (``view``), in sequence order."""

    title: str
    view: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Plain, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class SignatureLine:
    signature_id: str
    signer_id: str
    signer_name: str
    meaning: str
    reason: str
    signed_at: datetime

    @property
    def manifestation(self) -> str:
        """Printed name (user ID), local date and time with UTC offset, meaning (11.50)."""
        return (
            f"{self.signer_name} ({self.signer_id}), {local_display(self.signed_at)}, "
            f"{self.meaning}"
        )


@dataclass(frozen=True)
class IntegrityLine:
    """The integrity check of the rows a report includes from one chained view."""

    view: str
    first: int
    last: int
    rows: int
    ok: bool
    summary: str
    checkpoint_seq: int | None
    checkpoint_time: datetime | None
    failed_seqs: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        when = (
            f" (checkpoint {self.checkpoint_seq} signed {local_display(self.checkpoint_time)})"
            if self.checkpoint_seq is not None and self.checkpoint_time is not None
            else ""
        )
        return f"{self.summary}{when}"


@dataclass(frozen=True)
class CaptureImage:
    """A captured image the run record shows as a thumbnail, named by its SHA-256."""

    seq: int
    sha256: str
    fmt: str
    path: str
    camera: str
    step: str | None


@dataclass(frozen=True)
class ReportData:
    request: ReportRequest
    title: str
    generated_by_id: str
    generated_by_name: str
    generated_at: datetime
    sections: tuple[Section, ...]
    signatures: tuple[SignatureLine, ...]
    integrity: tuple[IntegrityLine, ...]
    header: tuple[tuple[str, str], ...] = ()
    """Further lines for the top of the report (a run's procedure, state, who started it)."""
    images: tuple[CaptureImage, ...] = ()

    @property
    def row_count(self) -> int:
        return sum(len(s.rows) for s in self.sections)

    @property
    def integrity_ok(self) -> bool:
        return all(i.ok for i in self.integrity)

    @property
    def integrity_summary(self) -> str:
        if not self.integrity:
            return "No records match; nothing to verify."
        return " | ".join(i.text for i in self.integrity)


@dataclass(frozen=True)
class ReportOutcome:
    """What an export wrote: the file, its manifest, and what they say."""

    path: str
    manifest_path: str
    kind: str
    fmt: str
    row_count: int
    sha256: str
    integrity_ok: bool
    integrity_summary: str
