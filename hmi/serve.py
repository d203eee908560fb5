"""The headless runtime with terminals on sockets (``hmi serve``).

A composition root, like ``hmi.terminal``: one Runtime owns the devices and
the records; ``hmi.remote`` puts its Terminal API on each listener. A Unix
socket serves terminals on this host (its file is made 0660, so the host's
group decides who may connect); a TLS listener serves remote terminals with
their plant certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hmi.core.errors import HmiError
from hmi.core.scanner import LinkEvent
from hmi.remote import protocol as rpc
from hmi.remote.cert_expiry import Expiry, expiring
from hmi.remote.server import TerminalServer
from hmi.remote.tls import PeerCheck, ServerContexts
from hmi.runtime import Runtime
from hmi.terminal import initial_links

log = logging.getLogger(__name__)


class ListenError(HmiError):
    title = "Listener"


@dataclass(frozen=True)
class Listen:
    """``unix:PATH`` or ``tls://HOST:PORT``."""

    kind: str
    path: Path | None = None
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> Listen:
        if text.startswith("unix:") and len(text) > 5:
            return cls("unix", path=Path(text[5:]))
        if text.startswith("tls://"):
            host, sep, port = text[6:].rpartition(":")
            if sep and host and port.isdigit() and int(port) < 65536:
                return cls("tls", host=host.strip("[]"), port=int(port))
        raise ListenError(f"--listen {text}: give unix:PATH or tls://HOST:PORT")

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tls://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serving(
    runtime: Runtime, listens: list[Listen], certs: Path | None
) -> AsyncIterator[tuple[TerminalServer, list[Listen]]]:
    """Listen for terminals on a started runtime; yields the listeners as bound."""
    assert runtime.api is not None and runtime.services is not None
    if any(lst.kind == "tls" for lst in listens) and certs is None:
        raise ListenError("A tls:// listener needs --certs (the plant CA directory).")
    links = initial_links(runtime)

    def link_changed(event: LinkEvent) -> None:
        links[event.device] = event.state.value

    runtime.events.on_link = link_changed
    tls = None
    if certs is not None and any(lst.kind == "tls" for lst in listens):
        try:
            tls = ServerContexts(certs)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ListenError(f"Cannot use the certificates in {certs}: {exc}") from exc
    server = TerminalServer(
        runtime.api,
        runtime.services.config.terminals,
        peer_check=PeerCheck(certs) if certs is not None else None,
        tls=tls,
        links=lambda: links,
        plant=runtime.services.config.plant.name,
    )
    servers: list[asyncio.Server] = []
    bound: list[Listen] = []
    announced: Path | None = None
    watch: asyncio.Task[None] | None = None
    try:
        if tls is not None and certs is not None:
            watch = asyncio.create_task(watch_certificates(runtime, certs), name="certificates")
        for listen in listens:
            servers.append(await _start(server, listen))
            if listen.kind == "tls":
                port = servers[-1].sockets[0].getsockname()[1]
                bound.append(Listen("tls", host=listen.host, port=port))
            else:
                bound.append(listen)
        announced = announce(runtime.data, bound)
        yield server, bound
    finally:
        runtime.events.on_link = None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if announced is not None:
            with contextlib.suppress(FileNotFoundError):
                announced.unlink()
        for s in servers:
            s.close()
        for s in servers:
            await s.wait_closed()
        for listen in listens:
            if listen.kind == "unix" and listen.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    listen.path.unlink()


SERVING_FILE = "serving.json"
CERTIFICATES_ALARM = "certificates_expiring"
CERTIFICATES_EVERY_S = 3600.0


async def watch_certificates(runtime: Runtime, certs: Path) -> None:
    """Every hour: the system alarm for certificates that end within a month (P3),
    or have ended (P2); cleared once the files are renewed (``hmi.remote.cert_expiry``)."""
    while True:
        check_certificates(runtime, certs, runtime.clock.now())
        await asyncio.sleep(CERTIFICATES_EVERY_S)  # the look's period, not a synchronisation


def check_certificates(runtime: Runtime, certs: Path, now: datetime) -> list[Expiry]:
    alarms = runtime.alarms
    try:
        soon = expiring(certs, now)
    except (OSError, ValueError) as exc:  # unreadable files: the handshake will say so
        log.error("cannot read the certificates in %s: %s", certs, exc)
        return []
    if alarms is not None:
        if soon:
            text = "Renew before terminals are refused: " + "; ".join(
                e.describe(now) for e in soon
            )
            priority = 2 if any(e.expired(now) for e in soon) else 3
            alarms.raise_system(CERTIFICATES_ALARM, f"{text} (docs/deployment.md).", priority)
        else:
            alarms.clear_system(CERTIFICATES_ALARM)
    return soon


def announce(data: Path, bound: list[Listen]) -> Path:
    """Say in the data directory where this runtime listens, for ``--online`` commands.

    While the runtime holds the records database nothing else can open it, so
    ``hmi query --online --data DIR`` reads this file to find the runtime's
    socket instead. Written whole (temporary file, rename) so a reader never
    sees half of it.
    """
    path = data / SERVING_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"pid": os.getpid(), "listen": [_absolute(b) for b in bound]}, indent=1) + "\n"
    )
    tmp.replace(path)
    return path


def _absolute(listen: Listen) -> str:
    if listen.kind == "unix" and listen.path is not None:
        return f"unix:{listen.path.absolute()}"
    return str(listen)


async def _start(server: TerminalServer, listen: Listen) -> asyncio.Server:
    try:
        if listen.kind == "unix":
            assert listen.path is not None
            if listen.path.exists():
                if not listen.path.is_socket():
                    raise ListenError(f"{listen.path} exists and is not a socket.")
                listen.path.unlink()  # a socket left by a runtime that did not stop cleanly
            s = await asyncio.start_unix_server(
                server.serve_unix, listen.path, limit=rpc.MAX_MESSAGE
            )
            os.chmod(listen.path, 0o660)
            return s
        # Plain TCP: the server does each handshake, so a failed one is recorded.
        return await asyncio.start_server(
            server.serve_tls, listen.host, listen.port, limit=rpc.MAX_MESSAGE
        )
    except (OSError, ValueError) as exc:
        raise ListenError(f"Cannot listen on {listen}: {exc}") from exc
