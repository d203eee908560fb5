"""The Terminal API on a socket: one connection per terminal, one session per connection.

A connection first says which terminal it is (``hello``). On the local Unix
socket the terminal ID is claimed and the source is the peer's account from
the kernel (plus the SSH client address the terminal reports, which the
terminal's ``sources`` patterns in plant.toml then allow or not); over TLS the
terminal ID is the client certificate's common name and the source the peer's
address, and a claim that differs is refused. Either way, the server decides
the ``Origin`` and the core checks it like any other.

Requests on one connection run concurrently (a query can be cancelled while it
runs) and their answers go out through one writer. A terminal that goes away
loses its session, recorded as ended with ``terminal_disconnected``.

What changed is pushed a few times a second (``hmi.remote.state``). Pushes
never wait for a terminal: a terminal whose unread data passes ``SLOW_BYTES``
gets no value updates until it catches up (state still goes out, it is
small), and one past ``STUCK_BYTES`` is cut off, so no terminal can hold up
the runtime or the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pwd
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

from hmi.core.api import TerminalAPI
from hmi.core.api_records import fresh_notices
from hmi.core.errors import HmiError, SessionEnded
from hmi.core.identity import Session
from hmi.core.records import Origin, SecurityEntry
from hmi.core.terminals import TerminalConfig
from hmi.remote import protocol as rpc
from hmi.remote.admission import RefusalLog, handshake
from hmi.remote.certs import CertificateError
from hmi.remote.codec import CodecError, decode, encode
from hmi.remote.methods import DESKS, METHODS, Method
from hmi.remote.state import Links, PushState, SharedReadings, sections
from hmi.remote.tls import PeerCheck, ServerContexts

log = logging.getLogger(__name__)

HELLO = "hello"
STATE = "state"
DISCONNECTED = "terminal_disconnected"
STUCK = "terminal_stuck"
PUSH_EVERY_S = 0.25
NOTICES_EVERY = 4
"""Pushes between two looks for new notifications (one read of the records each)."""
SLOW_BYTES = 256 * 1024
STUCK_BYTES = 8 * 1024 * 1024


@dataclass(eq=False)
class Connection:
    """One terminal's link: who it is, its session, its answers in flight."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer_account: str | None
    peer_address: str | None
    certified_terminal: str | None
    origin: Origin | None = None
    session: Session | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    push: PushState = field(default_factory=PushState)
    last_notice: int | None = None
    """The newest notification this terminal was shown (None: not looked yet)."""

    def buffered(self) -> int:
        transport = self.writer.transport
        return transport.get_write_buffer_size() if not transport.is_closing() else 0

    async def send(self, message: dict[str, Any]) -> None:
        async with self.write_lock:
            self.writer.write(rpc.encode_message(message))
            await self.writer.drain()


class TerminalServer:
    """Serves one ``TerminalAPI`` to any number of terminals."""

    def __init__(
        self,
        api: TerminalAPI,
        terminals: list[TerminalConfig],
        *,
        peer_check: PeerCheck | None = None,
        tls: ServerContexts | ssl.SSLContext | None = None,
        links: Links | None = None,
        push_every_s: float = PUSH_EVERY_S,
        plant: str = "",
    ) -> None:
        self.api = api
        self.plant = plant
        self.terminals = {t.id: t for t in terminals}
        self.peer_check = peer_check
        self.tls = tls
        """The server context ``serve_tls`` upgrades plain connections with (see
        ``hmi.remote.admission``); None when the listener did the handshake."""
        self.refusals = RefusalLog()
        self.links = links
        self.push_every_s = push_every_s
        self.connections: set[Connection] = set()
        self.readings = SharedReadings(api)

    # -- accepting ---------------------------------------------------------------

    async def serve_unix(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        account = _peer_account(writer.get_extra_info("socket"))
        await self._serve(Connection(reader, writer, account, None, None))

    async def serve_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A TCP connection: the TLS handshake (recorded if it fails), then the certificate."""
        address = writer.get_extra_info("peername")
        host = str(address[0]) if address else "unknown"
        secured = writer.get_extra_info("ssl_object") is not None
        try:
            if self.peer_check is None or (not secured and self.tls is None):
                raise CertificateError("This server admits no TLS terminals.")
            if not secured:
                assert self.tls is not None
                tls = self.tls.current() if isinstance(self.tls, ServerContexts) else self.tls
                try:
                    await handshake(writer, tls)
                finally:
                    secured = writer.get_extra_info("ssl_object") is not None
            ssl_object = writer.get_extra_info("ssl_object")
            peer = self.peer_check.identify(ssl_object.getpeercert(binary_form=True))
        except CertificateError as exc:
            await self._refuse_link(writer, host, exc.message, tell=secured)
            return
        await self._serve(Connection(reader, writer, None, host, peer.terminal_id))

    async def _refuse_link(
        self, writer: asyncio.StreamWriter, host: str, why: str, *, tell: bool = True
    ) -> None:
        """Record the refusal (``RefusalLog`` bounds repeats) and tell the terminal if the
        link can still carry it."""
        log.warning("terminal link from %s refused: %s", host, why)
        await self._record_refusal(Origin("unknown", f"tls:{host}"), host, why)
        if tell:
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(rpc.encode_message(rpc.notification("refused", {"reason": why})))
                await writer.drain()
        writer.close()

    async def _record_refusal(self, origin: Origin, address: str, why: str) -> None:
        detail = self.refusals.to_record(address, why)
        if detail is not None:
            await self.api.identity.recorder.commit([_link_refused(origin, detail)])

    # -- one connection ------------------------------------------------------------

    async def _serve(self, conn: Connection) -> None:
        self.connections.add(conn)
        pusher = asyncio.create_task(self._push(conn))
        try:
            while True:
                try:
                    message = await rpc.read_message(conn.reader)
                except rpc.RpcError as exc:
                    await conn.send(rpc.error(None, exc))
                    continue
                if message is None:
                    break
                task = asyncio.create_task(self._answer(conn, message))
                conn.tasks.add(task)
                task.add_done_callback(conn.tasks.discard)
        except (rpc.ProtocolError, ConnectionError, OSError) as exc:
            log.info("terminal link closed: %s", exc)
        finally:
            pusher.cancel()
            for task in list(conn.tasks):
                task.cancel()
            if conn.session is not None:
                await self.api.identity.end_session(conn.session, DISCONNECTED)
                conn.session = None
            self.connections.discard(conn)
            conn.writer.close()

    async def _answer(self, conn: Connection, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        try:
            value = await self._call(conn, message)
        except rpc.RpcError as exc:
            answer = rpc.error(request_id, exc)
        except SessionEnded as exc:
            answer = rpc.error(request_id, rpc.RpcError(rpc.SESSION_ENDED, exc.message))
        except HmiError as exc:
            data = {"title": exc.title, "kind": type(exc).__name__}
            answer = rpc.error(request_id, rpc.RpcError(rpc.REFUSED, exc.message, data))
        except CodecError as exc:
            answer = rpc.error(request_id, rpc.RpcError(rpc.INVALID_PARAMS, str(exc)))
        except Exception:
            log.exception("terminal request %s failed", message.get("method"))
            answer = rpc.error(
                request_id, rpc.RpcError(rpc.INTERNAL_ERROR, "the runtime could not answer")
            )
        else:
            answer = rpc.result(request_id, value)
        if request_id is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await conn.send(answer)

    async def _call(self, conn: Connection, message: dict[str, Any]) -> Any:
        name = message.get("method")
        params = message.get("params", {})
        if not isinstance(name, str) or not isinstance(params, dict):
            raise rpc.RpcError(rpc.INVALID_REQUEST, "method must be text and params an object")
        if name == HELLO:
            return await self._hello(conn, params)
        if name == STATE:
            return self._state(conn)
        method = METHODS.get(name)
        if method is None:
            raise rpc.RpcError(rpc.METHOD_NOT_FOUND, f"no method {name!r}")
        if conn.origin is None:
            raise rpc.RpcError(rpc.INVALID_REQUEST, "say hello first: which terminal is this?")
        kwargs = self._arguments(conn, method, params)
        try:
            fn = method.bind(self.api)
        except LookupError as exc:
            raise rpc.RpcError(rpc.METHOD_NOT_FOUND, str(exc)) from None
        value = await fn(**kwargs) if method.is_async else fn(**kwargs)
        if method.name == "login":
            conn.session = value
            conn.last_notice = None
        elif method.name == "logout":
            conn.session = None
        return encode(value)

    def _arguments(
        self, conn: Connection, method: Method, params: dict[str, Any]
    ) -> dict[str, Any]:
        unknown = set(params) - set(method.params)
        if unknown:
            raise rpc.RpcError(
                rpc.INVALID_PARAMS, f"{method.name} takes no {', '.join(sorted(unknown))}"
            )
        missing = method.required - set(params)
        if missing:
            raise rpc.RpcError(
                rpc.INVALID_PARAMS, f"{method.name} needs {', '.join(sorted(missing))}"
            )
        kwargs = {k: decode(method.params[k], v, f"{method.name}.{k}") for k, v in params.items()}
        if "session" in method.injects:
            if conn.session is None:
                raise SessionEnded("No one is logged in at this terminal.")
            kwargs["session"] = conn.session
        if "origin" in method.injects:
            kwargs["origin"] = conn.origin
        return kwargs

    async def _hello(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        """Fix the connection's origin: the terminal ID and the source recorded with its actions.

        A ``web_client`` is the browser address claimed by an ``hmi web``
        gateway; the kernel's account or the certificate stays the identity,
        and the claim is recorded beside it.
        """
        terminal = params.get("terminal")
        ssh = params.get("ssh_client")
        web = params.get("web_client")
        if conn.origin is not None:
            raise rpc.RpcError(rpc.INVALID_REQUEST, "this connection has said hello already")
        if web is not None and (
            not isinstance(web, str)
            or not 0 < len(web) <= 45
            or any(c not in "0123456789abcdefABCDEF.:" for c in web)
        ):
            raise rpc.RpcError(rpc.INVALID_PARAMS, "hello.web_client: expected an IP address")
        if conn.certified_terminal is not None:
            if terminal not in (None, conn.certified_terminal):
                named, claimed = conn.certified_terminal, _claimed(terminal)
                why = f"This terminal's certificate names {named}, not {claimed}."
                source = f"tls:{conn.peer_address}"
                await self._record_refusal(Origin(claimed, source), source, why)
                raise HmiError(why, "Not this terminal")
            terminal = conn.certified_terminal
            source = f"tls:{conn.peer_address}" + (f" web:{web}" if web else "")
        else:
            if not isinstance(terminal, str) or not terminal:
                raise rpc.RpcError(rpc.INVALID_PARAMS, "hello needs the terminal ID")
            who = conn.peer_account or "unknown"
            if web:
                source = f"web:{web} ({who})"
            elif isinstance(ssh, str) and ssh.strip():
                source = f"ssh:{ssh.split()[0]} ({who})"
            else:
                source = f"local:{who}@{socket.gethostname()}"
        if terminal not in self.terminals and self.terminals:
            claimed = _claimed(terminal)
            why = f"{claimed} is not a terminal of this plant."
            await self._record_refusal(Origin(claimed, source), source, why)
            raise HmiError(why, "Unknown terminal")
        conn.origin = Origin(str(terminal), source)
        desks = [d for d in DESKS if getattr(self.api, d, None) is not None]
        return {
            "terminal": conn.origin.terminal_id,
            "source": conn.origin.source,
            "plant": self.plant,
            "desks": desks,
        }

    def _state(self, conn: Connection) -> dict[str, Any]:
        """Everything the terminal shows, now; pushes go on from here."""
        if conn.session is None:
            raise SessionEnded("No one is logged in at this terminal.")
        conn.push = PushState()
        now = sections(self.api, conn.session, self.links)
        conn.push.changed_sections(now)
        try:
            tags = conn.push.changed_tags(self.readings, conn.session)
        except HmiError:  # a password change is due: no values yet
            tags = []
        return {"sections": now, "tags": tags}

    # -- pushing ---------------------------------------------------------------------

    async def _push(self, conn: Connection) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self.push_every_s)  # the push rate, not a synchronisation
            ticks += 1
            try:
                if ticks % NOTICES_EVERY == 1:
                    await self._notices(conn)
                if not await self._push_once(conn):
                    return
            except Exception:  # a bug must not silence this terminal for good
                log.exception("push to terminal %s failed", conn.origin)

    async def _push_once(self, conn: Connection) -> bool:
        """One push of what changed; False when the terminal is cut off."""
        session = conn.session
        if session is None:
            return True
        current = self.api.identity.sessions.get(session.session_id)
        if current is None or not current.active:
            conn.session = None
            reason = session.end_reason or "ended"
            self._post(conn, rpc.notification("session_ended", {"reason": reason}))
            return True
        buffered = conn.buffered()
        if buffered > STUCK_BYTES:
            log.warning("terminal %s is not reading: link cut", conn.origin)
            await self.api.identity.end_session(session, STUCK)
            conn.session = None
            conn.writer.transport.abort()
            return False
        changed = conn.push.changed_sections(sections(self.api, session, self.links))
        if changed:
            self._post(conn, rpc.notification("state", changed))
        if buffered > SLOW_BYTES:
            conn.push.dropped_value_pushes += 1
            return True
        try:
            tags = conn.push.changed_tags(self.readings, session)
        except HmiError:
            return True
        if tags:
            self._post(conn, rpc.notification("tags", {"readings": tags}))
        return True

    async def _notices(self, conn: Connection) -> None:
        """New notifications for the session's roles, pushed as ``notice`` events.

        A lockout notifies administrators: every administrator's terminal gets it
        within a second, whatever screen it shows.
        """
        session = conn.session
        if session is None:
            return
        fresh, last = await fresh_notices(self.api.records, session, conn.last_notice)
        if session is not conn.session:
            return
        conn.last_notice = last
        for row in fresh:
            self._post(conn, rpc.notification("notice", encode(row)))

    @staticmethod
    def _post(conn: Connection, message: dict[str, Any]) -> None:
        """Queue a push without waiting for the terminal to read it."""
        if not conn.writer.transport.is_closing():
            conn.writer.write(rpc.encode_message(message))


def _claimed(terminal: object) -> str:
    """A terminal ID as a client claimed it, cut to a length fit for the record."""
    text = str(terminal)
    return text if len(text) <= 64 else f"{text[:61]}..."


def _peer_account(sock: socket.socket | None) -> str | None:
    """The account of the process at the other end of a Unix socket, from the kernel."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return None


def _link_refused(origin: Origin, why: str) -> SecurityEntry:
    return SecurityEntry("terminal_refused", None, origin, actor_id="system", detail=why)
