"""The terminal UI on a runtime elsewhere (``hmi terminal --connect``).

A composition root, like ``hmi.terminal``: it joins a link to the runtime
(``hmi.remote``) and the same TUI that runs in the runtime's process. The
screens see the Terminal API; here it is the remote one, and the runtime's
session and link events arrive as pushed events instead of callbacks.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hmi.remote.client import RpcClient
from hmi.remote.terminal_api import RemoteTerminalAPI
from hmi.remote.tls import client_context

if TYPE_CHECKING:
    from hmi.core.api import TerminalAPI
    from hmi.ui.app import CustosApp


DIAL_TIMEOUT_S = 10.0
LINK_LOST = "The connection to the runtime is lost: reconnecting. Your session has ended."
LINK_BACK = "Connected to the runtime again. Log in to continue."


class ConnectError(ValueError):
    """The ``--connect`` target or its certificate options do not make a link."""


def check_target(
    target: str, cert: Path | None = None, key: Path | None = None, ca: Path | None = None
) -> None:
    """ConnectError naming the option unless ``target`` and the TLS files could make a link."""
    if target.startswith("unix:") and target.removeprefix("unix:"):
        return
    if not target.startswith("tls://"):
        raise ConnectError(f"--connect {target}: give unix:PATH or tls://HOST:PORT")
    _, sep, port = target.removeprefix("tls://").rpartition(":")
    if not sep or not port.isdigit():
        raise ConnectError(f"--connect {target}: give tls://HOST:PORT")
    for option, path in (("--cert", cert), ("--key", key), ("--ca", ca)):
        if path is None:
            raise ConnectError(f"--connect {target}: a TLS link needs --cert, --key and --ca")
        if not path.is_file():
            raise ConnectError(f"{option} {path}: no such file")


async def connect(
    target: str,
    *,
    terminal: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    ca: Path | None = None,
    web_client: str | None = None,
) -> RemoteTerminalAPI:
    """Open the link (``unix:PATH`` or ``tls://HOST:PORT``) and say which terminal this is.

    ``web_client`` is the browser's address when ``hmi web`` runs this terminal
    for a tab; it goes into the source the runtime records. The API it returns
    can dial the same way again (``keep_linked``).
    """
    if target.startswith("unix:"):
        path = Path(target.removeprefix("unix:"))

        async def open_link() -> RpcClient:
            return await RpcClient.unix(path)

    elif target.startswith("tls://"):
        host, sep, port = target.removeprefix("tls://").rpartition(":")
        if not sep or not port.isdigit():
            raise ConnectError(f"{target}: give tls://HOST:PORT")
        if cert is None or key is None or ca is None:
            raise ConnectError(f"{target}: a TLS link needs --cert, --key and --ca")
        context = client_context(cert, key, ca)

        async def open_link() -> RpcClient:
            return await RpcClient.tls(host.strip("[]"), int(port), context)

    else:
        raise ConnectError(f"{target}: give unix:PATH or tls://HOST:PORT")

    async def dial() -> tuple[RpcClient, dict[str, Any]]:
        client = await asyncio.wait_for(open_link(), DIAL_TIMEOUT_S)
        try:
            hello = await asyncio.wait_for(
                client.hello(terminal, os.environ.get("SSH_CLIENT"), web_client), DIAL_TIMEOUT_S
            )
        except BaseException:
            await client.close()
            raise
        return client, hello

    client, hello = await dial()
    return RemoteTerminalAPI(client, hello, dial)


def remote_app(api: RemoteTerminalAPI, **options: Any) -> CustosApp:
    """The TUI on ``api``, with the pushed session and link events wired to it."""
    from hmi.ui.app import CustosApp

    app = CustosApp(
        cast("TerminalAPI", api),
        api.origin,
        plant_name=api.plant,
        links=api.links,
        notices_every_s=None,
        **options,
    )

    def ended(reason: str) -> None:
        if app.session is not None:
            app.session_lost(app.session, reason)

    def warned() -> None:
        if app.session is not None:
            app.session_warning(app.session)

    def links(now: dict[str, str]) -> None:
        app.links.clear()
        app.links.update(now)

    def lost(reason: str) -> None:
        app.call_later(app.return_to_login, f"{reason} {LINK_LOST}")

    def back() -> None:
        app.call_later(app.return_to_login, LINK_BACK)

    api.on_session_ended = ended
    api.on_session_warning = warned
    api.on_links = links
    api.on_notice = app.show_notice
    api.on_link_lost = lost
    api.on_link_back = back
    return app
