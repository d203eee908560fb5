"""Read everything a report holds, in one reader cursor: rows, signatures, integrity.

Two shapes: a period report of one view (audit trail, alarm journal,
signatures, security events, captures), and the record of one procedure run
(the electronic batch record), which gathers the run's transitions, step
events, commands, captures, the alarms of its period, its refused attempts
and every signature they reference.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from hmi.core.clock import local_display
from hmi.core.errors import HmiError
from hmi.core.reports import (
    TITLES,
    CaptureImage,
    IntegrityLine,
    Plain,
    ReportData,
    ReportRequest,
    Section,
)
from hmi.store.keys import KeyRing
from hmi.store.report_rows import (
    KIND_SPECS,
    TooManyRows,
    integrity,
    period_rows,
    select,
    signature_ids,
    signature_lines,
    signatures,
)
from hmi.store.tables import (
    ALARM_JOURNAL,
    AUDIT,
    CAPTURES,
    ESIGNATURES,
    PROCEDURE_RUNS,
    STEP_EVENTS,
    ChainedTable,
)


def read_report(
    cur: duckdb.DuckDBPyConnection,
    keys: KeyRing,
    request: ReportRequest,
    by: tuple[str, str],
    at: datetime,
) -> ReportData:
    """The whole report for ``request``, made by ``by`` (user ID, printed name) at ``at``."""
    try:
        if request.kind == "run":
            return _run_report(cur, keys, request, by, at)
        return _period_report(cur, keys, request, by, at)
    except TooManyRows as exc:
        raise HmiError(
            f"{exc}; narrow the period (--from/--to) or the user.", title="Report refused"
        ) from None


def _checked(
    cur: duckdb.DuckDBPyConnection, keys: KeyRing, pairs: list[tuple[ChainedTable, Section]]
) -> tuple[IntegrityLine, ...]:
    lines = (integrity(cur, keys, table, section) for table, section in pairs)
    return tuple(line for line in lines if line is not None)


def _period_report(
    cur: duckdb.DuckDBPyConnection,
    keys: KeyRing,
    request: ReportRequest,
    by: tuple[str, str],
    at: datetime,
) -> ReportData:
    title = TITLES[request.kind]
    rows = period_rows(cur, request.kind, title, request.start, request.end, request.user_id)
    signed = rows if request.kind == "signatures" else signatures(cur, signature_ids((rows,)))
    table = KIND_SPECS[request.kind].table
    pairs = [(table, rows)]
    if signed is not rows:
        pairs.append((ESIGNATURES, signed))
    return ReportData(
        request,
        title,
        by[0],
        by[1],
        at,
        (rows,),
        signature_lines(signed),
        _checked(cur, keys, pairs),
    )


def _column(section: Section, name: str) -> list[Plain]:
    at = section.columns.index(name)
    return [row[at] for row in section.rows]


def _run_report(
    cur: duckdb.DuckDBPyConnection,
    keys: KeyRing,
    request: ReportRequest,
    by: tuple[str, str],
    at: datetime,
) -> ReportData:
    run_id = str(request.run_id)
    runs = select(cur, "Run state transitions", PROCEDURE_RUNS, "run_id = ?", [run_id])
    if not runs.rows:
        raise HmiError(f"There is no procedure run {run_id!r}.", title="Report refused")
    events = select(cur, "Step events", STEP_EVENTS, "run_id = ?", [run_id])
    commands = select(cur, "Commands and actions", AUDIT, "run_id = ?", [run_id])
    captures = select(cur, "Captures", CAPTURES, "run_id = ?", [run_id])
    times = [t for t in _column(runs, "ts") if isinstance(t, datetime)]
    state = str(_column(runs, "state_to")[-1])
    start = min(times)
    end = max(times) if state in ("complete", "aborted") else None
    period: list[object] = [start] if end is None else [start, end]
    alarms = select(
        cur,
        "Alarms during the run",
        ALARM_JOURNAL,
        "ts >= ?" + (" AND ts <= ?" if end is not None else ""),
        period,
    )
    alarms = Section(
        alarms.title,
        alarms.view,
        alarms.columns,
        alarms.rows,
        "Every alarm transition of the plant from the run's creation to its end "
        "(procedures are not linked to an area).",
    )
    sections = (_steps(events), events, commands, captures, alarms, _refused(commands, events))
    signed = signatures(cur, signature_ids((runs, events, commands, captures, alarms)))
    pairs = [
        (PROCEDURE_RUNS, runs),
        (STEP_EVENTS, events),
        (AUDIT, commands),
        (CAPTURES, captures),
        (ALARM_JOURNAL, alarms),
        (ESIGNATURES, signed),
    ]
    return ReportData(
        request,
        f"{TITLES['run']}: {run_id}",
        by[0],
        by[1],
        at,
        (runs, *sections),
        signature_lines(signed),
        _checked(cur, keys, pairs),
        header=_run_header(runs),
        images=_images(captures),
    )


def _run_header(runs: Section) -> tuple[tuple[str, str], ...]:
    first = dict(zip(runs.columns, runs.rows[0], strict=True))
    last = dict(zip(runs.columns, runs.rows[-1], strict=True))
    event = runs.columns.index("event")
    started = next(
        (dict(zip(runs.columns, r, strict=True)) for r in runs.rows if r[event] == "started"),
        None,
    )

    def who(row: dict[str, Plain]) -> str:
        when = row["ts"]
        shown = local_display(when) if isinstance(when, datetime) else str(when)
        return f"{row['actor_name']} ({row['actor_id']}) at {shown}"

    lines = [
        ("Procedure", f"{first['procedure_title']} ({first['procedure_id']})"),
        ("Version", str(first["procedure_version"])),
        ("Run ID", str(first["run_id"])),
        ("Created by", who(first)),
        ("Started by", who(started) if started else "(not started)"),
        ("State", f"{last['state_to']} (step {last['step_number']})"),
    ]
    return tuple(lines)


def _steps(events: Section) -> Section:
    """One line per step reached, in order: its status, when it started and completed."""
    steps: dict[int, dict[str, Plain]] = {}
    for row in events.rows:
        e = dict(zip(events.columns, row, strict=True))
        number = int(str(e["step_number"]))
        step = steps.setdefault(
            number,
            {
                "step_number": number,
                "step_id": e["step_id"],
                "step_title": e["step_title"],
                "status": "started",
                "started": None,
                "completed": None,
                "completed_by": None,
            },
        )
        if e["event"] == "started" and step["started"] is None:
            step["started"] = e["ts"]
        if e["event"] == "completed":
            step.update(status="completed", completed=e["ts"], completed_by=e["actor_id"])
        if e["event"] == "overdue" and step["status"] != "completed":
            step["status"] = "overdue"
    columns = (
        "step_number",
        "step_id",
        "step_title",
        "status",
        "started",
        "completed",
        "completed_by",
    )
    rows = tuple(tuple(s[c] for c in columns) for _, s in sorted(steps.items()))
    return Section("Steps", "step_events", columns, rows)


def _refused(commands: Section, events: Section) -> Section:
    """The refused attempts of the run, from the audit trail and the step events."""
    columns = ("view", "seq", "ts", "actor_id", "action", "step", "reason")
    rows: list[tuple[Plain, ...]] = []
    for section, step, reason in ((commands, "step", "detail"), (events, "step_title", "reason")):
        for row in section.rows:
            e = dict(zip(section.columns, row, strict=True))
            if e.get("outcome") == "refused":
                rows.append(
                    (
                        section.view,
                        e["seq"],
                        e["ts"],
                        e["actor_id"],
                        e["action"],
                        e[step],
                        e[reason] or e.get("reason"),
                    )
                )
    rows.sort(key=lambda r: str(r[2]))
    return Section("Refused attempts", "audit_trail, step_events", columns, tuple(rows))


def _images(captures: Section) -> tuple[CaptureImage, ...]:
    out = []
    for row in captures.rows:
        c = dict(zip(captures.columns, row, strict=True))
        out.append(
            CaptureImage(
                int(str(c["seq"])),
                str(c["sha256"]),
                str(c["format"]),
                str(c["image_file"]),
                str(c["camera"]),
                None if c["step"] is None else str(c["step"]),
            )
        )
    return tuple(out)
