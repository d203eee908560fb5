"""The configuration commands: check, schema, and change control (SUP-12).

``check`` and ``schema`` need no data directory. The change-control commands
open the data directory (the runtime must be stopped) and act as the person
given by ``--user``; every submission, approval, rejection and rollback is an
electronic signature, recorded with the version it signs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hmi.cli.common import (
    AdminArgs,
    _admin_options,
    _credentials,
    explained,
    fail,
    main,
    run,
)

T = TypeVar("T")


@main.group("config")
def config_group() -> None:
    """Configuration: check, schema, and change control (diff, submit, approve, history)."""


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the configuration files (for editors)."""
    from hmi.core.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@config_group.command("check")
@click.argument("directory", type=click.Path(path_type=Path), required=False)
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),
    default=None,
    envvar="HMI_CONFIG",
    help="Configuration directory (same as DIRECTORY).",
)
def config_check(directory: Path | None, config: Path | None) -> None:
    """Validate a configuration directory offline; errors name file, key path and reason."""
    from hmi.core.config import load_config

    where = directory or config
    if where is None:
        fail("name the configuration directory: hmi config check DIR (or --config DIR).")
        return
    with explained():
        cfg = load_config(where)
    click.echo(f"{where}: valid ({cfg.plant.name}).")


def _signing(
    args: AdminArgs,
    permission: str,
    describe: str,
    meaning: str,
    act: Callable[[Any, Any, Any, str, str], Awaitable[T]],
) -> T:
    """Log in as ``--user``, show what is about to be signed, act, log out."""
    from hmi.bootstrap import local_origin, open_services

    origin = local_origin(args.terminal)
    with explained():
        services = open_services(args.data, args.config, origin=origin)
    try:
        statement = services.config.security.signature.legal_statement
        click.echo(f"You are signing: {describe} (meaning: {meaning}).\n{statement}", err=True)
        user_id, password = _credentials(args.user, args.password_stdin, "your user ID")
        with explained():

            async def go() -> T:
                session = await services.identity.login(user_id, password, origin)
                try:
                    services.identity.require_permission(session, permission)
                    return await act(services, session, origin, password, user_id)
                finally:
                    await services.identity.logout(session)

            return run(go)
    finally:
        services.close()
    raise AssertionError("unreachable")


def _reading(args: AdminArgs, act: Callable[[Any], Awaitable[T]]) -> T:
    """Open the records (no login: reading versions needs no signature), act, close."""
    from hmi.bootstrap import local_origin, open_services

    with explained():
        services = open_services(args.data, args.config, origin=local_origin(args.terminal))
        try:
            return run(lambda: act(services))
        finally:
            services.close()
    raise AssertionError("unreachable")


def _outcome(version: Any) -> None:
    click.echo(f"Version {version.version} is {version.state}.")
    for line in version.signed_now:
        click.echo(f"Signed: {line}")
    if version.state == "proposed":
        click.echo(f"Still needs approval by: {', '.join(version.missing)}.")
    if version.state == "approved":
        click.echo("The configuration directory now holds this version; it takes effect at start.")


@config_group.command("diff")
@_admin_options
@click.argument("versions", nargs=-1, type=int)
def config_diff(args: AdminArgs, versions: tuple[int, ...]) -> None:
    """Differences: disk against the approved version; VERSION against its base; A against B."""
    from hmi.core.config_check import read_files
    from hmi.core.config_versions import describe_differences, diff_sets

    if len(versions) > 2:
        fail("give at most two version numbers.")
    if not versions and args.config is None:
        fail("--config names the configuration directory to compare with the approved version.")

    async def act(services: Any) -> tuple[str, list[str]]:
        change = services.change
        if not versions:
            approved = await change.approved()
            disk = read_files(args.config)
            return diff_sets(approved.files, disk), describe_differences(approved.files, disk)
        if len(versions) == 1:
            v = await change.version(versions[0])
            base = await change.version(v.base_version) if v.base_version else None
            old = base.files if base is not None else {}
            return diff_sets(old, v.files), describe_differences(old, v.files)
        a, b = await change.version(versions[0]), await change.version(versions[1])
        return diff_sets(a.files, b.files), describe_differences(a.files, b.files)

    diff, summary = _reading(args, act)
    if not summary:
        click.echo("No differences.")
        return
    click.echo("\n".join(summary))
    click.echo(diff, nl=False)


@config_group.command("submit")
@_admin_options
@click.option("--reason", required=True, help="Why the change is made (recorded and signed).")
def config_submit(args: AdminArgs, reason: str) -> None:
    """Record the configuration on disk as a proposed version, signed 'authored'."""
    from hmi.core.config_check import read_files

    if args.config is None:
        fail("--config names the configuration directory to submit.")
    files = read_files(args.config)

    async def act(services: Any, session: Any, origin: Any, password: str, user: str) -> Any:
        return await services.change.submit(session, origin, files, reason, password, user)

    _outcome(_signing(args, "edit_configuration", "the configuration on disk", "authored", act))


def _decide(verb: str, permission: str, meaning: str) -> Callable[..., Any]:
    def command(args: AdminArgs, version: int, reason: str) -> None:
        if args.config is None:
            fail("--config names the configuration directory an approved version is written to.")

        async def act(services: Any, session: Any, origin: Any, password: str, user: str) -> Any:
            method = getattr(services.change, verb)
            return await method(session, origin, version, reason, password, user)

        _outcome(_signing(args, permission, f"{verb} version {version}", meaning, act))

    return command


@config_group.command("approve")
@_admin_options
@click.argument("version", type=int)
@click.option("--reason", default="Change reviewed and approved", show_default=True)
def config_approve(args: AdminArgs, version: int, reason: str) -> None:
    """Approve a proposed version (QA; an administrator too for security or records policy)."""
    _decide("approve", "approve_configuration", "approved")(args, version, reason)


@config_group.command("reject")
@_admin_options
@click.argument("version", type=int)
@click.option("--reason", required=True, help="Why it is rejected (recorded and signed).")
def config_reject(args: AdminArgs, version: int, reason: str) -> None:
    """Reject a proposed version; it can never take effect."""
    _decide("reject", "approve_configuration", "reviewed")(args, version, reason)


@config_group.command("rollback")
@_admin_options
@click.argument("version", type=int)
@click.option("--reason", required=True, help="Why the earlier version is restored.")
def config_rollback(args: AdminArgs, version: int, reason: str) -> None:
    """Propose a new version restoring VERSION's text; it is approved like any change."""
    _decide("rollback", "edit_configuration", "authored")(args, version, reason)


@config_group.command("history")
@_admin_options
def config_history(args: AdminArgs) -> None:
    """Every configuration version: state, author, files changed, approvals."""

    async def act(services: Any) -> Any:
        return await services.change.versions()

    for v in _reading(args, act):
        when = v.created.strftime("%Y-%m-%d %H:%M:%S%z") if v.created else ""
        origin = f"restores {v.restores_version}; " if v.restores_version else ""
        click.echo(
            f"{v.version:>4} {v.state:<10} {when:<24} {v.author_name or ''} ({v.author_id or ''})"
            f" {origin}{', '.join(v.changed) or '-'}"
        )
        if v.reason:
            click.echo(f"     reason: {v.reason}")
        for a in v.approvals:
            click.echo(f"     approved as {a.role}: {a.actor_name} ({a.actor_id})")
        if v.state == "proposed":
            click.echo(f"     needs: {', '.join(v.missing)}")
