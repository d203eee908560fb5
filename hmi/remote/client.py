"""The terminal's end of the link: calls by wire name, answers decoded by the API's types.

A refusal comes back as the same kind of ``HmiError`` the core raised, with
its title and message, so a screen shows it exactly as it would in one
process; an ended session is ``SessionEnded``, which sends the screen back to
the login.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hmi.core import errors
from hmi.core.errors import HmiError, SessionEnded
from hmi.remote import protocol as rpc
from hmi.remote.codec import decode, encode
from hmi.remote.methods import METHODS

Listener = Callable[[str, dict[str, Any]], None]


def _error_kinds() -> dict[str, type[HmiError]]:
    kinds: dict[str, type[HmiError]] = {}
    todo: list[type[HmiError]] = [HmiError]
    while todo:
        cls = todo.pop()
        kinds[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return kinds


class LinkLost(HmiError):
    title = "No connection"


class RpcClient:
    """One connection to ``hmi serve``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._listeners: list[Listener] = []
        self._reading = asyncio.create_task(self._read())
        self.closed = asyncio.Event()
        self.refusal: str | None = None

    @classmethod
    async def unix(cls, path: Path) -> RpcClient:
        reader, writer = await asyncio.open_unix_connection(path, limit=rpc.MAX_MESSAGE)
        return cls(reader, writer)

    @classmethod
    async def tls(cls, host: str, port: int, context: ssl.SSLContext) -> RpcClient:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, limit=rpc.MAX_MESSAGE
        )
        return cls(reader, writer)

    def listen(self, listener: Listener) -> None:
        """``listener(method, params)`` for each event the server pushes."""
        self._listeners.append(listener)

    async def hello(
        self, terminal: str | None, ssh_client: str | None = None, web_client: str | None = None
    ) -> dict[str, Any]:
        """Say which terminal this is, and where its user is (SSH client, browser address)."""
        params: dict[str, Any] = {"terminal": terminal}
        if ssh_client:
            params["ssh_client"] = ssh_client
        if web_client:
            params["web_client"] = web_client
        answer: dict[str, Any] = await self.request("hello", params)
        return answer

    async def call(self, method: str, **params: Any) -> Any:
        """A Terminal API method by wire name; the answer as the API's own types."""
        spec = METHODS[method]
        raw = await self.request(method, {k: encode(v) for k, v in params.items()})
        return decode(spec.returns, raw, method)

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        if self.closed.is_set():
            raise LinkLost(self._lost())
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            self.writer.write(rpc.encode_message(rpc.request(request_id, method, params)))
            await self.writer.drain()
            return await future
        except (ConnectionError, OSError):
            raise LinkLost(self._lost()) from None
        finally:
            self._waiting.pop(request_id, None)

    def _lost(self) -> str:
        return self.refusal or "The connection to the runtime is lost."

    async def _read(self) -> None:
        kinds = _error_kinds()
        try:
            while True:
                message = await rpc.read_message(self.reader)
                if message is None:
                    break
                if "id" in message and message["id"] in self._waiting:
                    self._settle(self._waiting[message["id"]], message, kinds)
                elif "method" in message:
                    params = message.get("params") or {}
                    if message["method"] == "refused":
                        self.refusal = f"The runtime refused this terminal: {params.get('reason')}"
                    for listener in list(self._listeners):
                        listener(message["method"], params)
        except (rpc.ProtocolError, rpc.RpcError, ConnectionError, OSError, ssl.SSLError) as exc:
            self.refusal = self.refusal or f"The connection to the runtime is lost ({exc})."
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(LinkLost(self._lost()))

    @staticmethod
    def _settle(
        future: asyncio.Future[Any], message: dict[str, Any], kinds: dict[str, type[HmiError]]
    ) -> None:
        if future.done():
            return
        if "error" not in message:
            future.set_result(message.get("result"))
            return
        error = message["error"]
        code, text = error.get("code"), str(error.get("message", ""))
        data = error.get("data") or {}
        if code == rpc.SESSION_ENDED:
            future.set_exception(SessionEnded(text))
        elif code == rpc.REFUSED:
            cls = kinds.get(str(data.get("kind")), HmiError)
            try:
                exc = cls(text, data.get("title"))
            except TypeError:
                exc = HmiError(text, data.get("title"))
            future.set_exception(exc)
        else:
            future.set_exception(errors.HmiError(f"{text} (code {code})", "Terminal link"))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
            await self.writer.wait_closed()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading
