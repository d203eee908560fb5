"""The browser terminal (``hmi web``): textual-serve, one ``hmi terminal`` process per tab.

A browser tab is an ordinary remote terminal. The gateway serves textual-serve's
page and, for each websocket, starts ``hmi terminal --connect ...`` with the
web driver; keystrokes and screen updates cross the websocket, and the terminal
process speaks the Terminal API to ``hmi serve`` exactly as it would from a
shell. So the runtime checks and records everything as for any terminal, and
a tab that closes ends its process, whose dropped link ends the session on
the record.

Passwords are typed in the browser and cross the websocket, so the gateway
serves plain HTTP on loopback only: browsers elsewhere reach it through a TLS
reverse proxy or an SSH tunnel on this host. The browser's address goes to
the terminal (``--web-client``) and into the source the runtime records; it
is the gateway's claim, while the gateway's own account or certificate stays
the identity the runtime checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
MAX_TABS = 16
"""Tabs open at once: each is a process, so without a bound whoever reaches the page
could open tabs until the host runs out of memory."""
LOOPBACK_ONLY = (
    "{host} is not a loopback address. `hmi web` serves plain HTTP, and passwords typed "
    "in the browser cross it, so it listens on loopback only (127.0.0.1, ::1, localhost). "
    "For browsers on other machines, put a TLS reverse proxy (nginx, caddy) on this host "
    "in front of it and give --public-url https://NAME, or use an SSH tunnel "
    "(ssh -L PORT:127.0.0.1:PORT HOST); see docs/deployment.md."
)


class WebRefused(ValueError):
    """An option of ``hmi web`` that would expose the gateway or cannot work."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) on a loopback address; else WebRefused."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise WebRefused(f"--listen {text}: give HOST:PORT, e.g. 127.0.0.1:8000")
    host = host.strip("[]")
    if not _is_loopback(host):
        raise WebRefused(f"--listen {text}: " + LOOPBACK_ONLY.format(host=host))
    return host, int(port)


def check_public_url(url: str) -> str:
    """The address browsers use: https:// (a TLS proxy), or http:// on loopback (a tunnel)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url.rstrip("/")
    raise WebRefused(
        f"--public-url {url}: give https://NAME[:PORT] (the TLS reverse proxy browsers use), "
        "or http://localhost:PORT for an SSH tunnel's local end; plain HTTP beyond loopback "
        "would carry passwords in clear."
    )


def browser_address(remote: str | None, forwarded_for: str | None, trust_forwarded: bool) -> str:
    """Where the browser is, as the gateway can tell.

    Behind a reverse proxy on this host every tab comes from loopback; with
    ``trust_forwarded`` the address the proxy appended last to
    ``X-Forwarded-For`` is taken instead, but only from a loopback peer.
    """
    address = remote or "unknown"
    if trust_forwarded and forwarded_for and _is_loopback(address):
        last = forwarded_for.split(",")[-1].strip()
        with contextlib.suppress(ValueError):
            address = str(ipaddress.ip_address(last.strip("[]")))
    return address


def origin_allowed(origin: str | None, public_url: str) -> bool:
    """Whether a websocket's ``Origin`` is the gateway's own page.

    Browsers let any page open a websocket anywhere, ``127.0.0.1`` included;
    the ``Origin`` header is how a page elsewhere is told apart. Programs that
    send none are let through: they get a login screen, as a terminal would.
    """
    if origin is None:
        return True
    parts, own = urlsplit(origin), urlsplit(public_url)
    if (parts.scheme, parts.netloc) == (own.scheme, own.netloc):
        return True
    return parts.scheme == "http" and bool(parts.hostname) and _is_loopback(parts.hostname or "")


@dataclass(frozen=True)
class TerminalTarget:
    """What each tab's ``hmi terminal`` connects to (the options of ``hmi web``)."""

    connect: str
    terminal: str | None = None
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def command(self, web_client: str) -> str:
        """The shell command for one tab (textual-serve runs it through ``/bin/sh``)."""
        args = [sys.executable, "-m", "hmi.cli", "terminal", "--connect", self.connect]
        if self.terminal:
            args += ["--terminal", self.terminal]
        for option, path in (("--cert", self.cert), ("--key", self.key), ("--ca", self.ca)):
            if path is not None:
                args += [option, str(path.resolve())]
        args += ["--web-client", web_client]
        # exec: the terminal process itself gets the quit and the signals, not a shell.
        return "exec " + " ".join(shlex.quote(a) for a in args)


class WebGateway(Server):
    """textual-serve's server with the command built per websocket and every tab tracked.

    The base class builds one command at start-up; here each websocket gets its
    own, carrying its browser's address, and nothing shared is changed while
    requests run concurrently.
    """

    def __init__(
        self,
        target: TerminalTarget,
        host: str = "127.0.0.1",
        port: int = 8000,
        public_url: str | None = None,
        trust_forwarded: bool = False,
        max_tabs: int = MAX_TABS,
    ) -> None:
        super().__init__(
            command=f"hmi terminal --connect {target.connect}",
            host=host,
            port=port,
            title="Custos",
            public_url=public_url,
        )
        self.target = target
        self.trust_forwarded = trust_forwarded
        self.max_tabs = max_tabs
        self.fixed_public_url = public_url is not None
        self.tabs: set[AppService] = set()
        self._runner: web.AppRunner | None = None

    async def on_startup(self, app: web.Application) -> None:
        """Quiet: the CLI says where the gateway listens (the base prints a banner)."""

    async def on_shutdown(self, app: web.Application) -> None:
        """Each tab's terminal is told to quit, and killed if it does not in time."""
        await self._stop_tabs()

    async def _stop_tabs(self) -> None:
        await asyncio.gather(*(self._stop_tab(tab) for tab in list(self.tabs)))

    @staticmethod
    async def _stop_tab(tab: AppService) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(tab.stop(), STOP_TIMEOUT_S)
        process = tab._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)

    async def start(self) -> str:
        """Listen; the URL browsers open (the bound port when 0 was asked)."""
        app = await self._make_app()
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])
        if not self.fixed_public_url:
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.public_url = f"http://{host}:{self.port}"
        return self.public_url

    async def stop(self) -> None:
        """Stop listening and end every tab's terminal process."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._stop_tabs()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One tab: its own ``hmi terminal`` process, told where the browser is."""
        if not origin_allowed(request.headers.get("Origin"), self.public_url):
            log.warning("websocket from a page at %s refused", request.headers.get("Origin"))
            raise web.HTTPForbidden(text="This terminal opens only from its own page.")
        if len(self.tabs) >= self.max_tabs:
            log.warning("browser terminal refused: %d tabs open already", len(self.tabs))
            raise web.HTTPServiceUnavailable(
                text=f"{len(self.tabs)} browser terminals are open, the most this gateway allows."
            )
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        client = browser_address(
            request.remote, request.headers.get("X-Forwarded-For"), self.trust_forwarded
        )
        tab: AppService | None = None
        try:
            await websocket.prepare(request)
            tab = AppService(
                self.target.command(client),
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=lambda: self._close(websocket),
                download_manager=self.download_manager,
                debug=self.debug,
            )
            self.tabs.add(tab)
            log.info("browser terminal for %s started", client)
            await tab.start(width, height)
            watcher = asyncio.create_task(self._close_when_ended(tab, websocket))
            try:
                await self._process_messages(websocket, tab)
            finally:
                watcher.cancel()
                await self._stop_tab(tab)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            log.exception("browser terminal for %s failed", client)
        finally:
            if tab is not None:
                await self._stop_tab(tab)
                self.tabs.discard(tab)
                log.info("browser terminal for %s ended", client)
        return websocket

    @staticmethod
    async def _close(websocket: web.WebSocketResponse) -> None:
        await websocket.close()

    @staticmethod
    async def _close_when_ended(tab: AppService, websocket: web.WebSocketResponse) -> None:
        """A terminal that exits on its own (cannot connect, quit) closes its tab's socket."""
        process = tab._process
        if process is not None:
            await process.wait()
            await websocket.close()
