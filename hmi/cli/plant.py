"""The plant commands: the demo, running, the simulated plant, OPC UA browsing."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from hmi.cli.common import (
    explained,
    fail,
    main,
    read_secret,
    run,
)

# -- configuration and demo -------------------------------------------------------------


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
@click.option(
    "--seconds",
    type=float,
    default=None,
    help="Smoke run: the terminal runs headless this long, then the live values are printed.",
)
@click.option(
    "--data", type=click.Path(path_type=Path), default=Path("demo-data"), show_default=True
)
def demo(reset: bool, seconds: float | None, data: Path) -> None:
    """Run the demonstration: simulated plant, demo users, runtime and the terminal UI.

    The demo users and their passwords are printed first; the terminal opens
    on its login screen (F10 logs out, Ctrl-Q stops the demo).
    """
    import contextlib
    import logging

    from hmi.demo import DEMO_USERS, MODBUS_PORT, OPCUA_PORT, demo_config_dir, run_demo
    from hmi.terminal import run_terminal

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # late replies: the driver copes

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

    async def front(runtime: Any) -> None:
        if seconds is not None:
            await run_terminal(runtime, seconds=seconds)
            click.echo("\n".join(["", *_tag_lines(runtime)]))
            return
        if sys.stdin.isatty():
            await asyncio.to_thread(
                click.prompt, "Press Enter to open the terminal", default="", show_default=False
            )
        await run_terminal(runtime)

    with explained(), contextlib.suppress(KeyboardInterrupt):
        config = demo_config_dir()
        asyncio.run(run_demo(data, config, reset=reset, on_ready=ready, front=front))


@main.command("run")
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Data directory.")
@click.option("--config", "config_dir", type=click.Path(path_type=Path), required=True)
@click.option("--terminal", "terminal_id", default="T-CONSOLE-1", show_default=True)
@click.option(
    "--allow-unapproved-config",
    is_flag=True,
    help="Start even if the configuration is not the approved version: every command is "
    "blocked and the system alarm SYSTEM.config_unapproved is raised.",
)
def run_command(
    data: Path, config_dir: Path, terminal_id: str, allow_unapproved_config: bool
) -> None:
    """Run the runtime and the terminal UI in one process (Ctrl-Q stops both)."""
    import contextlib

    from hmi.runtime import Runtime
    from hmi.terminal import run_terminal

    async def serve() -> None:
        async with Runtime(
            data, config_dir, allow_unapproved_config=allow_unapproved_config
        ) as runtime:
            await run_terminal(runtime, terminal_id)

    with explained(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


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
