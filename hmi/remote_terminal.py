"""The terminal UI on a runtime elsewhere (``hmi terminal --connect``).

A composition root, like ``hmi.terminal``: it joins a link to the runtime
(``hmi.remote``) and the same TUI that runs in the runtime's process. The
screens see the Terminal API; here it is the remote one, and the runtime's
session and link events arrive as pushed events instead of callbacks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hmi.remote.client import RpcClient
from hmi.remote.terminal_api import RemoteTerminalAPI
from hmi.remote.tls import client_context

if TYPE_CHECKING:
    from hmi.core.api import TerminalAPI
    from hmi.ui.app import CustosApp


class ConnectError(ValueError):
    """The ``--connect`` target or its certificate options do not make a link."""


async def connect(
    target: str,
    *,
    terminal: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    ca: Path | None = None,
) -> RemoteTerminalAPI:
    """Open the link (``unix:PATH`` or ``tls://HOST:PORT``) and say which terminal this is."""
    if target.startswith("unix:"):
        client = await RpcClient.unix(Path(target.removeprefix("unix:")))
    elif target.startswith("tls://"):
        host, sep, port = target.removeprefix("tls://").rpartition(":")
        if not sep or not port.isdigit():
            raise ConnectError(f"{target}: give tls://HOST:PORT")
        if cert is None or key is None or ca is None:
            raise ConnectError(f"{target}: a TLS link needs --cert, --key and --ca")
        client = await RpcClient.tls(host.strip("[]"), int(port), client_context(cert, key, ca))
    else:
        raise ConnectError(f"{target}: give unix:PATH or tls://HOST:PORT")
    hello = await client.hello(terminal, os.environ.get("SSH_CLIENT"))
    api = RemoteTerminalAPI(client, hello)
    return api


def remote_app(api: RemoteTerminalAPI, **options: Any) -> CustosApp:
    """The TUI on ``api``, with the pushed session and link events wired to it."""
    from hmi.ui.app import CustosApp

    app = CustosApp(
        cast("TerminalAPI", api),
        api.origin,
        plant_name=api.plant,
        links=api.links,
        **options,
    )

    def ended(reason: str) -> None:
        if app.session is not None:
            app.session_lost(app.session)

    def warned() -> None:
        if app.session is not None:
            app.session_warning(app.session)

    def links(now: dict[str, str]) -> None:
        app.links.clear()
        app.links.update(now)

    api.on_session_ended = ended
    api.on_session_warning = warned
    api.on_links = links
    return app
