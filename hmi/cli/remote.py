"""``hmi serve`` and ``hmi terminal``: one runtime, many terminals (Unix socket, mutual TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click

from hmi.cli.common import CONFIG_OPTION, DATA_OPTION, explained, main
from hmi.cli.online import tls_options


@main.command("serve")
@DATA_OPTION
@CONFIG_OPTION
@click.option(
    "--listen",
    "listens",
    multiple=True,
    required=True,
    help="unix:PATH (terminals on this host) or tls://HOST:PORT (remote terminals); repeatable.",
)
@click.option(
    "--certs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="HMI_CERTS",
    help="The plant CA directory (hmi certs): server certificate, CA, revocation list.",
)
def serve_command(
    data: Path, config: Path | None, listens: tuple[str, ...], certs: Path | None
) -> None:
    """Run the runtime headless and serve terminals until SIGTERM or Ctrl-C."""
    from hmi.runtime import Runtime
    from hmi.serve import Listen, serving

    async def serve() -> None:
        wanted = [Listen.parse(text) for text in listens]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with Runtime(data, config) as runtime, serving(runtime, wanted, certs) as (_, bound):
            click.echo(f"Serving terminals on {', '.join(str(b) for b in bound)}.", err=True)
            await stop.wait()
            click.echo("Stopping: terminals are logged out and the runtime stops.", err=True)

    with explained(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


@main.command("terminal")
@click.option("--connect", "target", required=True, help="unix:PATH or tls://HOST:PORT")
@click.option(
    "--terminal",
    "terminal_id",
    default=None,
    envvar="HMI_TERMINAL",
    help="Terminal ID (Unix socket; over TLS the certificate names it).",
)
@tls_options
@click.option(
    "--web-client",
    default=None,
    hidden=True,
    help="The browser's address, set by `hmi web` for the tab this terminal serves.",
)
def terminal_command(
    target: str,
    terminal_id: str | None,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    web_client: str | None,
) -> None:
    """The terminal UI on a runtime served by `hmi serve`."""
    from hmi.remote_terminal import ConnectError, connect, remote_app

    async def run_terminal() -> None:
        try:
            api = await connect(
                target, terminal=terminal_id, cert=cert, key=key, ca=ca, web_client=web_client
            )
        except (ConnectError, OSError) as exc:
            raise click.ClickException(f"Cannot connect to {target}: {exc}") from None
        linked = asyncio.create_task(api.keep_linked())
        try:
            await remote_app(api).run_async()
        finally:
            linked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await linked
            await api.client.close()

    with explained(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_terminal())
