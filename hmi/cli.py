"""The ``hmi`` command. The only module that prints.

Commands never hang waiting for input that cannot come: when standard input
is not a terminal, a command that needs a password fails with a message
naming the option that supplies it.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import sys
import time
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
def verify(data: Path) -> None:
    """Recompute every chain and checkpoint (runtime stopped). Exit 1 on any problem."""
    from hmi.store.verify import verify_data_dir

    with explained():
        report = verify_data_dir(data)
    click.echo(report.summary())
    for problem in report.problems:
        click.echo(f"  {problem}")
    sys.exit(0 if report.ok else 1)


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
@click.argument("sql")
def query(
    data: Path,
    config: Path | None,
    terminal: str | None,
    user: str | None,
    password_stdin: bool,
    fmt: str,
    max_rows: int,
    sql: str,
) -> None:
    """Run one read-only SQL query on the QA views (QA role; every query is recorded)."""
    from hmi.bootstrap import local_origin, open_services
    from hmi.store.qa import QaService

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


# -- configuration and demo -------------------------------------------------------------


@main.group("config")
def config_group() -> None:
    """Configuration tools."""


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the configuration files (for editors)."""
    from hmi.core.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@config_group.command("check")
@click.argument("directory", type=click.Path(path_type=Path))
def config_check(directory: Path) -> None:
    """Validate a configuration directory; errors name file, key path and reason."""
    from hmi.core.config import load_config

    with explained():
        cfg = load_config(directory)
    click.echo(f"{directory}: valid ({cfg.plant.name}).")


def _tag_lines(runtime: Any) -> list[str]:
    table = runtime.plant.table
    lines = [f"{'tag':<26} {'value':>12} {'units':<6} {'quality':<9} reason"]
    for name, value in sorted(table.snapshot().items()):
        d = table.definition(name)
        shown = value.value
        text = f"{shown:.3f}" if isinstance(shown, float) else "" if shown is None else str(shown)
        lines.append(
            f"{name:<26} {text[:12]:>12} {(d.units or '')[:6]:<6} {value.quality.value:<9} "
            f"{value.reason[:40]}"
        )
    return lines


@main.command()
@click.option("--reset", is_flag=True, help="Start over with a fresh demo data directory.")
@click.option("--seconds", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--data", type=click.Path(path_type=Path), default=Path("demo-data"), show_default=True
)
def demo(reset: bool, seconds: float | None, data: Path) -> None:
    """Run the demonstration: simulated plant, demo users, runtime, live values.

    The terminal UI is not built yet; until it is, the live tag values are
    printed as text every two seconds (Ctrl-C stops).
    """
    import contextlib
    import logging

    from hmi.demo import DEMO_USERS, MODBUS_PORT, OPCUA_PORT, demo_config_dir, run_demo

    logging.getLogger("asyncua").setLevel(logging.ERROR)

    def ready(runtime: Any, created: bool) -> None:
        state = "created" if created else "reused (hmi demo --reset starts over)"
        click.echo(f"Demo records in {data}: {state}.")
        click.echo(
            f"Simulated plant: modbus tcp://127.0.0.1:{MODBUS_PORT}, "
            f"opcua opc.tcp://127.0.0.1:{OPCUA_PORT}"
        )
        click.echo("Demo users (user ID / password):")
        for user in DEMO_USERS:
            click.echo(f"  {user.user_id:<11} {user.password:<12} {user.full_name} ({user.role})")

    users = "  ".join(f"{u.user_id}/{u.password}" for u in DEMO_USERS)

    def tick(runtime: Any) -> None:
        lines = _tag_lines(runtime)
        if sys.stdout.isatty():  # redraw in place, keeping the demo users in view
            stamp = time.strftime("%H:%M:%S %z")
            head = [f"Custos demo  {stamp}  (Ctrl-C stops)", f"users: {users}", ""]
            click.echo("\x1b[H\x1b[2J" + "\n".join(head + lines))
        else:
            click.echo("\n".join(["", *lines]))

    with explained(), contextlib.suppress(KeyboardInterrupt):
        config = demo_config_dir()
        asyncio.run(
            run_demo(data, config, reset=reset, seconds=seconds, on_ready=ready, on_tick=tick)
        )


# -- devices: simulated plant and OPC UA browsing ------------------------------------------


def _why(exc: BaseException) -> str:
    """A bind failure in a few words: pymodbus reports it as a bare RuntimeError."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "the port is in use or cannot be bound" if isinstance(exc, RuntimeError) else str(exc)


@main.command()
@click.option(
    "--modbus-port",
    type=click.IntRange(0, 65535),
    default=15020,
    show_default=True,
    help="Port of the simulated PLC (Modbus TCP); 0 picks a free port.",
)
@click.option(
    "--opcua-port",
    type=click.IntRange(0, 65535),
    default=14840,
    show_default=True,
    help="Port of the simulated microscope (OPC UA); 0 picks a free port.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
def sim(modbus_port: int, opcua_port: int, seconds: float | None) -> None:
    """Run the simulated plant on 127.0.0.1: a bioreactor PLC and a microscope.

    Prints one line per server once both listen (`modbus tcp://127.0.0.1:PORT
    unit 1`, `opcua opc.tcp://127.0.0.1:PORT`); config/demo expects the
    default ports.
    """
    import contextlib
    import signal

    from drivers.sim.microscope import MicroscopeServer
    from drivers.sim.plc import BioreactorPLC

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        plc = BioreactorPLC("127.0.0.1", modbus_port, 1, noise=0.02, realtime=True)
        mic = MicroscopeServer("127.0.0.1", opcua_port)
        try:
            await plc.start()
        except (OSError, RuntimeError) as exc:
            fail(f"cannot listen on 127.0.0.1:{modbus_port} (Modbus): {_why(exc)}", 1)
        try:
            try:
                await mic.start()
            except (OSError, RuntimeError) as exc:
                fail(f"cannot listen on 127.0.0.1:{opcua_port} (OPC UA): {_why(exc)}", 1)
            click.echo(f"modbus tcp://127.0.0.1:{plc.port} unit {plc.unit}")
            click.echo(f"opcua {mic.url}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
        finally:
            await mic.stop()
            await plc.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


@main.command()
@click.argument("url")
@click.option("--depth", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--user", "username", help="Log in as this user (else anonymously).")
@click.option("--password-env", help="Environment variable holding the user's password.")
def browse(url: str, depth: int, username: str | None, password_env: str | None) -> None:
    """List the objects, variables and methods of an OPC UA server (for tag addresses)."""
    import os

    from drivers.opcua import OpcUaSettings, describe, format_browse
    from drivers.opcua import browse as browse_server

    password: str | None = None
    if username is not None and password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            fail(f"environment variable {password_env} (--password-env) is not set.")
    elif username is not None:
        password = read_secret("Password", from_stdin=False, option="--password-env")
    elif password_env is not None:
        fail("--password-env needs --user.")
    settings = OpcUaSettings(url, username=username, password=password)
    try:
        entries = run(lambda: browse_server(url, depth=depth, settings=settings))
    except Exception as exc:
        fail(f"cannot browse {url}: {describe(exc)}", 1)
    click.echo(format_browse(entries), nl=False)
