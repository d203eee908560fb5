"""The records commands: init, verify, query."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

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
    read_secret,
    run,
)
from hmi.cli.online import call_online, connect_options, link_target

# -- init / verify --------------------------------------------------------------


@main.command()
@DATA_OPTION
@CONFIG_OPTION
@TERMINAL_OPTION
@click.option("--admin", "admin_id", required=True, help="User ID of the first administrator.")
@click.option("--admin-name", required=True, help="Full printed name of the first administrator.")
@click.option(
    "--admin-password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the administrator's temporary password (else it is asked for).",
)
def init(
    data: Path,
    config: Path | None,
    terminal: str | None,
    admin_id: str,
    admin_name: str,
    admin_password_file: Path | None,
) -> None:
    """Create a new data directory with its keys and first administrator."""
    from hmi.bootstrap import init_data_dir, local_origin
    from hmi.store.datadir import DataDir

    with explained():
        DataDir(data).require_new()
        if admin_password_file is not None:
            temporary = admin_password_file.read_text().strip()
        else:
            temporary = read_secret(
                "Temporary password",
                from_stdin=False,
                option="--admin-password-file",
                confirm=True,
            )
        services = run(
            lambda: init_data_dir(
                data, config, admin_id, admin_name, temporary, local_origin(terminal)
            )
        )
        services.close()
    click.echo(
        f"Created {data}: records database, keys (keep {data / 'keys'} private and backed up), "
        f"anchor file. Administrator {admin_id} must change the temporary password at first "
        f"login (`hmi passwd --data {data} --user {admin_id}`)."
    )


@main.command()
@DATA_OPTION
@click.option(
    "--package",
    "package",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Check an inspection package (directory or .zip) instead; needs no data directory.",
)
@click.option(
    "--keys",
    "keys",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="With --package: the plant's keys directory, to recompute the chains (HMAC key).",
)
@click.option(
    "--expect-fingerprint",
    default=None,
    help="With --package: the key fingerprint the plant publishes; any other fails.",
)
@connect_options
@TERMINAL_OPTION
@USER_OPTION
@STDIN_OPTION
def verify(
    data: Path,
    package: Path | None,
    keys: Path | None,
    expect_fingerprint: str | None,
    connect_to: str | None,
    online: bool,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    terminal: str | None,
    user: str | None,
    password_stdin: bool,
) -> None:
    """Recompute every chain and checkpoint (runtime stopped). Exit 1 on any problem.

    With --connect the running runtime checks its own records (verify_records
    permission; writes wait while it reads; the check is recorded).
    """
    from hmi.store.verify import verify_data_dir

    if package is not None:
        _verify_package(package, keys, expect_fingerprint)
    if keys is not None or expect_fingerprint is not None:
        fail("--keys and --expect-fingerprint only apply with --package.")
    connect_to = link_target(connect_to, online, data)
    if connect_to is not None:
        credentials = _credentials(user, password_stdin, "a user with verify_records")
        with explained():
            answer = call_online(
                connect_to, terminal, (cert, key, ca), credentials, "records.verify"
            )
        click.echo(answer.summary)
        for problem in answer.problems:
            click.echo(f"  {problem}")
        sys.exit(0 if answer.ok else 1)
    with explained():
        report = verify_data_dir(data)
    click.echo(report.summary())
    for problem in report.problems:
        click.echo(f"  {problem}")
    sys.exit(0 if report.ok else 1)


def _verify_package(package: Path, keys: Path | None, expect: str | None) -> None:
    from hmi.store.package_verify import verify_package

    report = verify_package(package, keys_dir=keys, expect_fingerprint=expect)
    click.echo(report.summary())
    for problem in report.problems:
        click.echo(f"  {problem}")
    sys.exit(0 if report.ok else 1)


# -- QA queries -------------------------------------------------------------------


def _render(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [
        min(48, max([len(c)] + [len(row[i]) for row in cells])) for i, c in enumerate(columns)
    ]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    body = ["  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


@main.command()
@DATA_OPTION
@CONFIG_OPTION
@TERMINAL_OPTION
@USER_OPTION
@STDIN_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--max-rows", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@connect_options
@click.argument("sql")
def query(
    data: Path,
    config: Path | None,
    terminal: str | None,
    user: str | None,
    password_stdin: bool,
    fmt: str,
    max_rows: int,
    connect_to: str | None,
    online: bool,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    sql: str,
) -> None:
    """Run one read-only SQL query on the QA views (QA role; every query is recorded).

    With --connect the running runtime answers it, so QA can query while the plant runs.
    """
    from hmi.bootstrap import local_origin, open_services
    from hmi.store.qa import QaService

    connect_to = link_target(connect_to, online, data)
    if connect_to is not None:
        credentials = _credentials(user, password_stdin, "a QA user's ID")
        with explained():
            answer = call_online(
                connect_to,
                terminal,
                (cert, key, ca),
                credentials,
                "records.query",
                sql=sql,
                max_rows=max_rows,
            )
        click.echo(_render(list(answer.columns), [tuple(r) for r in answer.rows], fmt))
        more = " (truncated: more rows exist; raise --max-rows)" if answer.truncated else ""
        click.echo(f"{answer.row_count} row(s) in {answer.elapsed_s:.3f} s{more}", err=True)
        return

    origin = local_origin(terminal)
    with explained():
        services = open_services(data, config, origin=origin)
    user_id, password = _credentials(user, password_stdin, "a QA user's ID")
    try:
        with explained():

            async def go() -> Any:
                session = await services.identity.login(user_id, password, origin)
                try:
                    return await QaService(services).run(session, sql, max_rows=max_rows)
                finally:
                    await services.identity.logout(session)

            result = run(go)
    finally:
        services.close()
    if services.integrity is not None and not services.integrity.ok:
        click.echo(
            f"WARNING: record integrity check failed: {services.integrity.summary()}", err=True
        )
    click.echo(_render(result.columns, result.rows, fmt))
    more = " (truncated: more rows exist; raise --max-rows)" if result.truncated else ""
    click.echo(f"{result.row_count} row(s) in {result.elapsed_s:.3f} s{more}", err=True)
