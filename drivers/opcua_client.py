"""Reaching an OPC UA server: settings, a connected client, and a close that never hangs.

asyncua logs every request at DEBUG, including ActivateSession with the
password, so importing this module installs a filter that hides it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from dataclasses import dataclass, field
from pathlib import Path

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.observer import Observer

from drivers.base import DriverError
from drivers.opcua_values import _LOGIN_STATUS, _status_code, describe


class _HideIdentityTokens(logging.Filter):
    """asyncua logs every request at DEBUG, including ActivateSession with the password."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        return not any(isinstance(a, ua.ActivateSessionRequest) for a in args)


_token_filter = _HideIdentityTokens()
logging.getLogger("asyncua.client.ua_client.UASocketProtocol").addFilter(_token_filter)


class SecurityPolicy(enum.Enum):
    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"


class SecurityMode(enum.Enum):
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


@dataclass(frozen=True, slots=True)
class OpcUaPoint:
    """A point by name, mapped to an OPC UA node id string such as ``ns=2;s=MIC1.Focus``."""

    name: str
    node_id: str
    writable: bool = False


@dataclass(frozen=True)
class OpcUaSettings:
    """How to reach one server.

    ``password`` is already resolved by the caller and never shown in repr.
    ``server_certificate`` pins the server: a server presenting another
    certificate is refused. Without it the certificate the server announces
    in GetEndpoints is used as it is (asyncua keeps no trust list), which
    protects against eavesdropping but not against an impostor.
    """

    endpoint: str
    security_policy: SecurityPolicy = SecurityPolicy.NONE
    security_mode: SecurityMode = SecurityMode.SIGN_AND_ENCRYPT
    client_certificate: Path | None = None
    client_private_key: Path | None = None
    server_certificate: Path | None = None
    application_uri: str = "urn:custos:hmi:opcua-client"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sampling_interval_ms: float = 100.0
    publishing_interval_ms: float = 100.0
    request_timeout_s: float = 4.0
    connect_timeout_s: float = 10.0
    keepalive_interval_s: float = 1.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    queue_size: int = 10_000

    def __post_init__(self) -> None:
        secure = self.security_policy is not SecurityPolicy.NONE
        if secure and (self.client_certificate is None or self.client_private_key is None):
            raise ValueError("Basic256Sha256 needs client_certificate and client_private_key")
        if self.username is not None and self.password is None:
            raise ValueError(f"user {self.username!r} has no password")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("backoff needs 0 < backoff_initial_s <= backoff_max_s")


async def open_client(settings: OpcUaSettings, observer: Observer | None = None) -> Client:
    """A connected asyncua client for ``settings`` (security, identity, timeouts)."""
    s = settings
    client = Client(
        s.endpoint, timeout=s.request_timeout_s, watchdog_intervall=s.keepalive_interval_s
    )
    client.application_uri = s.application_uri
    client.name = client.description = "Custos HMI"
    if observer is not None:
        client.uaclient.observer = observer
    if s.username is not None:
        client.set_user(s.username)
        client.set_password(s.password or "")
    try:
        async with asyncio.timeout(s.connect_timeout_s):
            if s.security_policy is SecurityPolicy.BASIC256SHA256:
                assert s.client_certificate is not None and s.client_private_key is not None
                mode = (
                    ua.MessageSecurityMode.Sign
                    if s.security_mode is SecurityMode.SIGN
                    else ua.MessageSecurityMode.SignAndEncrypt
                )
                server_cert = str(s.server_certificate) if s.server_certificate else None
                await client.set_security(
                    SecurityPolicyBasic256Sha256,
                    str(s.client_certificate),
                    str(s.client_private_key),
                    server_certificate=server_cert,
                    mode=mode,
                )
            await client.connect()
    except BaseException as exc:
        await close_client(client, s.request_timeout_s)
        if isinstance(exc, TimeoutError):
            raise DriverError(f"no answer within {s.connect_timeout_s} s") from exc
        if _status_code(exc) in _LOGIN_STATUS:
            raise DriverError(f"login refused for user {s.username!r}: {describe(exc)}") from exc
        raise
    return client


_closing: set[asyncio.Future[None]] = set()


async def close_client(client: Client, timeout: float) -> None:
    """Close session and channel if the link still answers; always drop the socket.

    ``Client.close_session`` is what stops asyncua's publish, keep-alive and
    channel-renewal tasks, so it runs even when the transport is gone. It
    swallows CancelledError while stopping those tasks, so it runs shielded in
    its own task: cancelling the caller (``stop``) must not be lost.
    """
    client.connection_lost_callback = None
    closing = asyncio.ensure_future(_close_quietly(client, timeout))
    _closing.add(closing)
    closing.add_done_callback(_closing.discard)
    await asyncio.shield(closing)


async def _close_quietly(client: Client, timeout: float) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await client.close_session()
    if client.uaclient.has_transport:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await client.close_secure_channel()
    with contextlib.suppress(Exception):
        client.disconnect_socket()
