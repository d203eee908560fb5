"""``hmi report``: printed and electronic copies of the records (runtime stopped)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from hmi.cli.common import (
    CONFIG_OPTION,
    DATA_OPTION,
    STDIN_OPTION,
    TERMINAL_OPTION,
    USER_OPTION,
    _credentials,
    explained,
    fail,
    main,
    run,
)
from hmi.cli.online import call_online, connect_options, link_target
from hmi.core.reports import FORMATS, KINDS, ReportOutcome, ReportRequest

TIME_HELP = "YYYY-MM-DD, YYYY-MM-DD HH:MM or ISO 8601; local time unless an offset is given."


def parse_time(option: str, value: str | None) -> datetime | None:
    """A time from the command line; without an offset it is this host's local time."""
    if value is None or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option} {value!r} is not a date or time: use {TIME_HELP}")
        raise AssertionError("unreachable") from None
    return when.astimezone() if when.tzinfo is None else when


@main.command()
@DATA_OPTION
@CONFIG_OPTION
@TERMINAL_OPTION
@USER_OPTION
@STDIN_OPTION
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("run_id", required=False)
@click.option("--from", "start", help=f"Start of the period (inclusive): {TIME_HELP}")
@click.option("--to", "end", help=f"End of the period (exclusive): {TIME_HELP}")
@click.option("--actor", help="Only rows of this user ID (who acted, signed or was concerned).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="pdf", show_default=True)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="File to write; its manifest is written beside it as FILE.manifest.json.",
)
@click.option("--force", is_flag=True, help="Replace --out (and its manifest) if they exist.")
@connect_options
def report(
    data: Path,
    config: Path | None,
    terminal: str | None,
    user: str | None,
    password_stdin: bool,
    kind: str,
    run_id: str | None,
    start: str | None,
    end: str | None,
    actor: str | None,
    fmt: str,
    out: Path,
    force: bool,
    connect_to: str | None,
    online: bool,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
) -> None:
    """Write a report of KIND (a procedure run: `run RUN_ID`); needs view_records.

    Every export is recorded in the audit trail as `report_exported`. With
    --connect the running runtime writes it (--out is a path on its host).
    """
    from hmi.bootstrap import local_origin, open_services
    from hmi.core.api_reports import ReportDesk
    from hmi.core.clock import SystemClock
    from hmi.records.report_maker import StoreReportMaker

    if kind == "run" and not run_id:
        fail("`hmi report run` needs the run ID: hmi report run RUN_ID --out FILE")
    if kind != "run" and run_id:
        fail(f"unexpected argument {run_id!r}: only `hmi report run` takes a run ID.")
    request = ReportRequest(
        kind, fmt, parse_time("--from", start), parse_time("--to", end), actor, run_id
    )
    connect_to = link_target(connect_to, online, data)
    if connect_to is not None:
        credentials = _credentials(user, password_stdin, "a QA user's ID")
        with explained():
            outcome = call_online(
                connect_to,
                terminal,
                (cert, key, ca),
                credentials,
                "reports.export",
                request=request,
                out=str(out.absolute()),
                force=force,
            )
        _print_outcome(outcome)
        return
    origin = local_origin(terminal)
    with explained():
        services = open_services(data, config, origin=origin)
    user_id, password = _credentials(user, password_stdin, "a QA user's ID")
    try:
        with explained():
            desk = ReportDesk(
                services.identity,
                services.recorder,
                StoreReportMaker(services.store),
                SystemClock(),
            )

            async def go() -> ReportOutcome:
                session = await services.identity.login(user_id, password, origin)
                try:
                    return await desk.export(session, origin, request, str(out), force)
                finally:
                    await services.identity.logout(session)

            outcome = run(go)
    finally:
        services.close()
    _print_outcome(outcome)


def _print_outcome(outcome: ReportOutcome) -> None:
    click.echo(outcome.path)
    click.echo(
        f"{outcome.row_count} row(s), {outcome.fmt}, SHA-256 {outcome.sha256}; "
        f"manifest {outcome.manifest_path}",
        err=True,
    )
    click.echo(f"integrity: {outcome.integrity_summary}", err=True)
    if not outcome.integrity_ok:
        fail("the report was written, but the integrity check of its rows FAILED.", 1)
