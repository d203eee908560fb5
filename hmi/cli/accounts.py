"""The account commands: passwd and users (every change signed and audited)."""

from __future__ import annotations

from pathlib import Path

import click

from hmi.cli.common import (
    CONFIG_OPTION,
    DATA_OPTION,
    REASON_OPTION,
    STDIN_OPTION,
    TERMINAL_OPTION,
    USER_OPTION,
    AdminArgs,
    _admin_options,
    _as_admin,
    _credentials,
    explained,
    main,
    read_secret,
    run,
)


@main.command()
@DATA_OPTION
@CONFIG_OPTION
@TERMINAL_OPTION
@USER_OPTION
@STDIN_OPTION
def passwd(
    data: Path, config: Path | None, terminal: str | None, user: str | None, password_stdin: bool
) -> None:
    """Change your own password (required after a temporary password is issued)."""
    from hmi.bootstrap import local_origin, open_services

    user_id, old = _credentials(user, password_stdin, "the account whose password changes")
    new = read_secret(
        "New password", from_stdin=password_stdin, option="--password-stdin", confirm=True
    )
    with explained():
        services = open_services(data, config, origin=local_origin(terminal))
        try:

            async def change() -> None:
                session = await services.identity.login(user_id, old, local_origin(terminal))
                try:
                    await services.identity.change_password(session, old, new)
                finally:
                    await services.identity.logout(session)

            run(change)
        finally:
            services.close()
    click.echo(f"Password changed for {user_id}.")


@main.group()
def users() -> None:
    """Manage accounts (administrators; every change is signed and audited)."""


@users.command("add")
@_admin_options
@click.argument("user_id")
@click.option("--name", "full_name", required=True, help="Full printed name (unique).")
@click.option("--role", "roles", multiple=True, required=True, help="Role; repeat for several.")
@REASON_OPTION
def users_add(
    args: AdminArgs, user_id: str, full_name: str, roles: tuple[str, ...], reason: str
) -> None:
    """Add an account; prints its temporary password once."""
    temporary = _as_admin(
        args,
        f"add user {user_id} ({full_name}) with roles {', '.join(roles)}",
        lambda s, session, cred: s.admin.add_user(session, cred, user_id, full_name, roles, reason),
    )
    click.echo(
        f"Added {user_id}. Temporary password (hand it over; it must be changed at first "
        f"login): {temporary}"
    )


@users.command("reset-password")
@_admin_options
@click.argument("user_id")
@REASON_OPTION
def users_reset(args: AdminArgs, user_id: str, reason: str) -> None:
    """Issue a new temporary password; the user must change it at next login."""
    temporary = _as_admin(
        args,
        f"reset the password of {user_id}",
        lambda s, session, cred: s.admin.reset_password(session, cred, user_id, reason),
    )
    click.echo(f"Temporary password for {user_id} (must be changed at next login): {temporary}")


@users.command("deactivate")
@_admin_options
@click.argument("user_id")
@REASON_OPTION
def users_deactivate(args: AdminArgs, user_id: str, reason: str) -> None:
    """Deactivate an account (accounts are never deleted; IDs are never reused)."""
    _as_admin(
        args,
        f"deactivate {user_id}",
        lambda s, session, cred: s.admin.deactivate(session, cred, user_id, reason),
    )
    click.echo(f"Deactivated {user_id}.")


@users.command("unlock")
@_admin_options
@click.argument("user_id")
@REASON_OPTION
def users_unlock(args: AdminArgs, user_id: str, reason: str) -> None:
    """Unlock an account locked after failed attempts."""
    _as_admin(
        args,
        f"unlock {user_id}",
        lambda s, session, cred: s.admin.unlock(session, cred, user_id, reason),
    )
    click.echo(f"Unlocked {user_id}.")


@users.command("set-roles")
@_admin_options
@click.argument("user_id")
@click.option("--role", "roles", multiple=True, required=True, help="Role; repeat for several.")
@REASON_OPTION
def users_set_roles(args: AdminArgs, user_id: str, roles: tuple[str, ...], reason: str) -> None:
    """Replace an account's roles."""
    _as_admin(
        args,
        f"set the roles of {user_id} to {', '.join(roles)}",
        lambda s, session, cred: s.admin.set_roles(session, cred, user_id, roles, reason),
    )
    click.echo(f"Roles of {user_id}: {', '.join(roles)}.")


@users.command("list")
@_admin_options
def users_list(args: AdminArgs) -> None:
    """List accounts (administrators)."""
    accounts = _as_admin(args, None, lambda s, session, cred: s.recorder.list_users())
    click.echo(f"{'user':<16} {'name':<28} {'roles':<24} state")
    for u in accounts:
        state = "deactivated" if not u.active else "locked" if u.locked else "active"
        if u.active and u.must_change_password:
            state += ", must change password"
        click.echo(f"{u.user_id:<16} {u.full_name:<28} {','.join(u.roles):<24} {state}")
