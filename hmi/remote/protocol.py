"""JSON-RPC 2.0 over a byte stream: one UTF-8 JSON message per line.

A line is bounded (``MAX_MESSAGE``), so a terminal cannot make the runtime
buffer without end. Errors keep JSON-RPC's codes for malformed traffic and
add two of the product's own: a refusal the core explained (its title and
message travel as they are, already recorded by the core) and an ended
session. Nothing here knows the Terminal API; see ``hmi.remote.methods``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE = 8 * 1024 * 1024
"""Bytes in one message line; a capture image travels as base64 within it."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REFUSED = 1
"""The core refused or failed, and said why: ``data`` holds ``title`` and ``kind``."""
SESSION_ENDED = 2
"""No session on this connection (logged out, timed out, or never logged in)."""


class ProtocolError(Exception):
    """The peer broke the protocol: the connection is closed, with this reason."""


@dataclass(frozen=True)
class RpcError(Exception):
    code: int
    message: str
    data: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise ProtocolError("the stream ended inside a message") from None
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"a message is longer than {MAX_MESSAGE} bytes") from None
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RpcError(PARSE_ERROR, f"not JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 message")
    return message


def encode_message(message: dict[str, Any]) -> bytes:
    data = json.dumps({"jsonrpc": "2.0", **message}, separators=(",", ":"), ensure_ascii=False)
    raw = data.encode("utf-8") + b"\n"
    if len(raw) > MAX_MESSAGE:
        raise RpcError(INTERNAL_ERROR, f"the answer is longer than {MAX_MESSAGE} bytes")
    return raw


def request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"id": request_id, "method": method, "params": params}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"method": method, "params": params}


def result(request_id: Any, value: Any) -> dict[str, Any]:
    return {"id": request_id, "result": value}


def error(request_id: Any, err: RpcError) -> dict[str, Any]:
    return {"id": request_id, "error": err.to_json()}
