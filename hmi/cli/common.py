"""What every ``hmi`` command shares: the group, options, password input, plain refusals.

The ``hmi`` command is the only part of the product that prints.

Commands never hang waiting for input that cannot come: when standard input
is not a terminal, a command that needs a password fails with a message
naming the option that supplies it.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from hmi.core.errors import HmiError

T = TypeVar("T")

DATA_OPTION = click.option(
    "--data",
    "data",
    type=click.Path(path_type=Path),
    default=Path("var"),
    show_default=True,
    envvar="HMI_DATA",
    help="Data directory (records database, keys, anchor file).",
)
CONFIG_OPTION = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),
    default=None,
    envvar="HMI_CONFIG",
    help="Configuration directory (plant.toml, security.toml). Built-in defaults if omitted.",
)
TERMINAL_OPTION = click.option(
    "--terminal",
    "terminal",
    default=None,
    envvar="HMI_TERMINAL",
    help="Terminal ID recorded with every action (default cli@HOST).",
)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def explained() -> Iterator[None]:
    """Show refusals and failures as their plain message, not as a traceback."""
    try:
        yield
    except HmiError as exc:
        fail(f"{exc.title}: {exc.message}", 1)


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro()

    return asyncio.run(main())


def read_secret(prompt: str, *, from_stdin: bool, option: str, confirm: bool = False) -> str:
    """A password from the terminal (hidden) or, when asked for, one line of standard input."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail(f"{option} was given but standard input is empty.")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        fail(f"no terminal to ask for the {prompt.lower()}: pass {option}.")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


@click.group()
@click.version_option(package_name="custos", prog_name="hmi")
def main() -> None:
    """Custos: supervisory HMI with self-proving records (21 CFR Part 11)."""


# -- sessions for administrative commands -----------------------------------------


def _credentials(user: str | None, password_stdin: bool, role_hint: str) -> tuple[str, str]:
    if user is None:
        if not sys.stdin.isatty():
            fail(f"no terminal to ask for your user ID: pass --user ({role_hint}).")
        user = str(click.prompt("User ID"))
    password = read_secret("Password", from_stdin=password_stdin, option="--password-stdin")
    return user, password


USER_OPTION = click.option("--user", "user", help="Your user ID (else asked for).")
STDIN_OPTION = click.option(
    "--password-stdin", is_flag=True, help="Read your password from the first line of stdin."
)


@dataclass(frozen=True)
class AdminArgs:
    """The options every account command shares: where the records are, who is acting."""

    data: Path
    config: Path | None
    terminal: str | None
    user: str | None
    password_stdin: bool


def _admin_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options and hand them to the command as one ``AdminArgs``."""

    @functools.wraps(f)
    def wrapper(**kwargs: Any) -> Any:
        names = ("data", "config", "terminal", "user", "password_stdin")
        args = AdminArgs(**{n: kwargs.pop(n) for n in names})
        return f(args, **kwargs)

    for option in (DATA_OPTION, CONFIG_OPTION, TERMINAL_OPTION, USER_OPTION, STDIN_OPTION):
        wrapper = option(wrapper)
    return wrapper


def _as_admin(
    args: AdminArgs,
    describe: str | None,
    act: Callable[[Any, Any, Any], Awaitable[T]],
    permission: str = "administer_users",
) -> T:
    """Log in as the administrator, show what is signed (if anything), act, log out."""
    from hmi.bootstrap import local_origin, open_services
    from hmi.core.useradmin import Credentials

    origin = local_origin(args.terminal)
    with explained():
        services = open_services(args.data, args.config, origin=origin)
    if describe is not None:
        statement = services.config.security.signature.legal_statement
        click.echo(f"You are signing: {describe} (meaning: performed).\n{statement}", err=True)
    admin_id, password = _credentials(args.user, args.password_stdin, "an administrator's ID")
    try:
        with explained():

            async def go() -> T:
                session = await services.identity.login(admin_id, password, origin)
                try:
                    services.identity.require_permission(session, permission)
                    return await act(services, session, Credentials(password, admin_id))
                finally:
                    await services.identity.logout(session)

            return run(go)
    finally:
        services.close()
    raise AssertionError("unreachable")


REASON_OPTION = click.option("--reason", required=True, help="Why (recorded and signed).")
