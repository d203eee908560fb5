"""``hmi export-package``: the inspection package of a period (runtime stopped; audited).

Who exports what is evidence: the export, its refusal and its failure are
each an audit record (``package_exported``) naming the period, the output,
the number of files and the manifest's SHA-256, which identifies the package.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from hmi.bootstrap import Services
    from hmi.core.identity import Session
    from hmi.core.records import Origin
    from hmi.store.package import PackageResult, Period

EXPORT_PERMISSION = "export_records"
ACTION = "package_exported"


def parse_moment(value: str, option: str, *, end: bool) -> datetime:
    """An ISO date or date-time; without an offset, local time. A bare date for ``--to``
    means the end of that day, so ``--from 2026-01-05 --to 2026-01-05`` is one whole day."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            moment = datetime.combine(day, time())
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (2026-01-05) or date-time (2026-01-05T08:00).")
        raise AssertionError("unreachable") from None
    return moment if moment.tzinfo is not None else moment.astimezone()


async def _export(
    services: Services, session: Session, origin: Origin, out: Path, period: Period
) -> PackageResult:
    """Check the permission, build the package, and record the outcome (or the refusal)."""
    from hmi.core.api_refusals import record_refusal
    from hmi.core.errors import HmiError, PackageError
    from hmi.core.records import AuditEntry
    from hmi.records.package_reports import period_reports
    from hmi.store.package import Exporter, build_package

    what = f"{period.start.isoformat()}..{period.end.isoformat()} to {out}"
    target = f"package:{out}"
    try:
        services.identity.require_permission(session, EXPORT_PERMISSION)
    except HmiError as exc:
        raise await record_refusal(
            services.recorder, session, origin, ACTION, target, exc, what
        ) from None
    who = Exporter(session.user.user_id, session.user.full_name)

    def entry(outcome: str, detail: str) -> AuditEntry:
        return AuditEntry(
            ACTION, outcome, who.user_id, who.full_name, origin, target=target, detail=detail[:2000]
        )

    now = services.store.clock.now()
    reports = period_reports(services.store, period, (who.user_id, who.full_name), now)
    try:
        result = await asyncio.to_thread(
            build_package,
            services.store,
            out,
            period,
            who,
            plant=services.config.plant.name,
            extras=reports,
        )
    except PackageError as exc:
        await services.recorder.commit([entry("failed", f"{what}: {exc.message}")])
        raise
    verdict = "integrity OK" if result.integrity_ok else "integrity FAILED"
    detail = (
        f"period {what}; {result.files} files; manifest SHA-256 {result.manifest_sha256}; {verdict}"
    )
    await services.recorder.commit([entry("done", detail)])
    return result


@main.command("export-package")
@DATA_OPTION
@CONFIG_OPTION
@TERMINAL_OPTION
@USER_OPTION
@STDIN_OPTION
@click.option("--from", "start", required=True, help="Start of the period (ISO date/time).")
@click.option("--to", "end", required=True, help="End of the period, excluded (a date: whole day).")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="A new directory (or an empty one), or a file ending in .zip.",
)
def export_package(
    data: Path,
    config: Path | None,
    terminal: str | None,
    user: str | None,
    password_stdin: bool,
    start: str,
    end: str,
    out: Path,
) -> None:
    """Export an inspection package for a period (needs export_records; exit 1 if FAILED)."""
    from hmi.bootstrap import local_origin, open_services
    from hmi.store.package import Period, check_out

    period = Period(parse_moment(start, "--from", end=False), parse_moment(end, "--to", end=True))
    if period.end <= period.start:
        fail(f"--to {end} is not after --from {start}: the period would be empty.")
    origin = local_origin(terminal)
    with explained():
        check_out(out)
        services = open_services(data, config, origin=origin)
    user_id, password = _credentials(user, password_stdin, "a user with export_records")
    try:
        with explained():

            async def go() -> PackageResult:
                session = await services.identity.login(user_id, password, origin)
                try:
                    return await _export(services, session, origin, out, period)
                finally:
                    await services.identity.logout(session)

            result = run(go)
    finally:
        services.close()
    if not result.integrity_ok:
        click.echo(f"FAILED: the records did not verify; package written to {out}:", err=True)
        for line in result.integrity:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    click.echo(
        f"Package written: {out} ({result.files} files; manifest SHA-256 "
        f"{result.manifest_sha256}). Key fingerprint {result.fingerprint}. "
        f"Check it with `hmi verify --package {out}`."
    )
