"""``hmi web``: terminals in a browser, through a gateway on loopback (textual-serve)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click

from hmi.cli.common import explained, main
from hmi.cli.online import tls_options


@main.command("web")
@click.option(
    "--listen",
    default="127.0.0.1:8000",
    show_default=True,
    help="HOST:PORT on a loopback address (plain HTTP; see --public-url for other machines).",
)
@click.option(
    "--connect", "target", required=True, help="The runtime: unix:PATH or tls://HOST:PORT."
)
@click.option(
    "--terminal",
    "terminal_id",
    default=None,
    envvar="HMI_TERMINAL",
    help="Terminal ID of every browser tab (Unix socket; over TLS the certificate names it).",
)
@tls_options
@click.option(
    "--public-url",
    default=None,
    help="The https:// address browsers use, at a TLS reverse proxy on this host.",
)
@click.option(
    "--trust-forwarded",
    is_flag=True,
    help="Record the browser address the local reverse proxy puts last in X-Forwarded-For.",
)
@click.option(
    "--max-tabs",
    type=click.IntRange(1, 1000),
    default=16,  # hmi.web.MAX_TABS (not imported here: it would load aiohttp for every command)
    show_default=True,
    help="Browser tabs open at once (each is a terminal process of about 75 MB).",
)
def web_command(
    listen: str,
    target: str,
    terminal_id: str | None,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    public_url: str | None,
    trust_forwarded: bool,
    max_tabs: int,
) -> None:
    """Serve browser terminals: each tab runs its own `hmi terminal --connect TARGET`."""
    from hmi.remote_terminal import ConnectError, check_target
    from hmi.web import TerminalTarget, WebGateway, WebRefused, check_public_url, parse_listen

    try:
        host, port = parse_listen(listen)
        url = check_public_url(public_url) if public_url else None
        check_target(target, cert, key, ca)
    except (WebRefused, ConnectError) as exc:
        raise click.UsageError(str(exc)) from None
    if target.startswith("unix:") and not terminal_id:
        raise click.UsageError("--terminal: a Unix socket link needs the terminal ID of the tabs")
    gateway = WebGateway(
        TerminalTarget(target, terminal_id, cert, key, ca),
        host=host,
        port=port,
        public_url=url,
        trust_forwarded=trust_forwarded,
        max_tabs=max_tabs,
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            where = await gateway.start()
        except OSError as exc:
            raise click.ClickException(f"--listen {listen}: {exc.strerror or exc}") from None
        try:
            click.echo(f"Serving browser terminals on {where} (runtime {target}).", err=True)
            await stop.wait()
            click.echo("Stopping: every tab's terminal ends.", err=True)
        finally:
            await gateway.stop()

    with explained(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
