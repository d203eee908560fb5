"""Commands that ask a running runtime (``--connect``) instead of opening the data directory.

DuckDB lets one process hold the records, so while ``hmi serve`` runs, QA
queries and reports go through it like any terminal: logged in, checked and
recorded by the runtime, with the connection's terminal and source.
"""

from __future__ import annotations

import json
import os
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
    """``--connect``/``--online`` (ask a running runtime, not the data directory), TLS options.

    The command receives ``connect_to`` and ``online``; ``link_target`` makes one of them.
    """
    f = click.option(
        "--online",
        is_flag=True,
        help="Ask the runtime serving --data (hmi serve), through its Unix socket.",
    )(tls_options(f))
    return click.option(
        "--connect",
        "connect_to",
        default=None,
        envvar="HMI_CONNECT",
        help="Ask a running runtime (hmi serve): unix:PATH or tls://HOST:PORT.",
    )(f)


def link_target(connect_to: str | None, online: bool, data: Path) -> str | None:
    """Where to ask: ``--connect`` as given, or the socket the runtime serving DATA announced."""
    if not online:
        return connect_to
    if connect_to is not None:
        raise click.UsageError("Give --connect or --online, not both.")
    from hmi.serve import SERVING_FILE

    path = data / SERVING_FILE
    try:
        announced = json.loads(path.read_text())
        listens = [str(x) for x in announced["listen"]]
        pid = int(announced["pid"])
    except FileNotFoundError:
        raise click.ClickException(
            f"No runtime is serving {data}: `hmi serve` writes {path} while it runs. "
            "Start it, or give --connect."
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"Cannot read {path}: {exc}") from None
    if not _alive(pid):
        raise click.ClickException(
            f"The runtime that wrote {path} (process {pid}) is not running. Start `hmi serve`."
        )
    unix = [x for x in listens if x.startswith("unix:")]
    if not unix:
        raise click.ClickException(
            f"The runtime serving {data} listens only on {', '.join(listens)}: "
            "give --connect with --cert, --key and --ca."
        )
    return unix[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's process: it exists
        return True
    return True


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
