"""Commands that ask a running runtime (``--connect``) instead of opening the data directory.

DuckDB lets one process hold the records, so while ``hmi serve`` runs, QA
queries and reports go through it like any terminal: logged in, checked and
recorded by the runtime, with the connection's terminal and source.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hmi.cli.common import run


def tls_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """A terminal's certificate, key and plant CA, for a ``tls://`` link."""
    for name, what in reversed(
        [
            ("--cert", "This terminal's certificate (TLS link)."),
            ("--key", "This terminal's private key (TLS link)."),
            ("--ca", "The plant CA certificate (TLS link)."),
        ]
    ):
        f = click.option(
            name, type=click.Path(dir_okay=False, path_type=Path), default=None, help=what
        )(f)
    return f


def connect_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--connect`` (ask a running runtime instead of the data directory) and the TLS options."""
    return click.option(
        "--connect",
        "connect_to",
        default=None,
        envvar="HMI_CONNECT",
        help="Ask a running runtime (hmi serve): unix:PATH or tls://HOST:PORT.",
    )(tls_options(f))


def call_online(
    target: str,
    terminal: str | None,
    tls: tuple[Path | None, Path | None, Path | None],
    credentials: tuple[str, str],
    method: str,
    **params: Any,
) -> Any:
    """Log in over the link, make one call, log out; the runtime records all three."""
    from hmi.remote_terminal import ConnectError, connect

    async def go() -> Any:
        cert, key, ca = tls
        try:
            api = await connect(target, terminal=terminal, cert=cert, key=key, ca=ca)
        except (ConnectError, OSError) as exc:
            raise click.ClickException(f"Cannot connect to {target}: {exc}") from None
        try:
            await api.client.call("login", user_id=credentials[0], password=credentials[1])
            try:
                return await api.client.call(method, **params)
            finally:
                await api.client.call("logout")
        finally:
            await api.client.close()

    return run(go)
