"""OPC UA client driver (asyncua).

Values arrive through subscriptions, so the server's change detection and
source timestamps reach the tag table. Writes carry a Variant of the node's
own DataType and no timestamps, because S7-1500, Kepware and open62541
refuse timestamps and other Variant types; the status field is left out too,
so the value is the only thing written. A lost link makes the
driver DOWN with every subscribed point BAD; it then reconnects with capped
exponential backoff on a fresh session and re-creates its monitored items,
since a restarted server has forgotten the old session and subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import logging
import math
import struct
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import (
    DataChangeEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)
from asyncua.common.ua_utils import data_type_to_variant_type
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.observer import Observer
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from drivers.base import (
    DeviceRefused,
    DriverError,
    LinkCallback,
    LinkDown,
    LinkState,
    PointError,
    Quality,
    Sample,
    SampleCallback,
    Value,
    WriteNotConfirmed,
    cancel_and_wait,
    utc_now,
)

_log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
_VT = ua.VariantType


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


@dataclass(frozen=True, slots=True)
class BrowseEntry:
    node_id: str
    path: str
    node_class: str
    data_type: str = ""
    writable: bool = False


_INT_RANGES = {
    _VT.SByte: (-(2**7), 2**7 - 1),
    _VT.Byte: (0, 2**8 - 1),
    _VT.Int16: (-(2**15), 2**15 - 1),
    _VT.UInt16: (0, 2**16 - 1),
    _VT.Int32: (-(2**31), 2**31 - 1),
    _VT.UInt32: (0, 2**32 - 1),
    _VT.Int64: (-(2**63), 2**63 - 1),
    _VT.UInt64: (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
_LINK_ERRORS = (ConnectionError, OSError, TimeoutError)
_LINK_STATUS = {
    StatusCodes.BadSessionIdInvalid,
    StatusCodes.BadSessionClosed,
    StatusCodes.BadSecureChannelClosed,
    StatusCodes.BadSecureChannelIdInvalid,
    StatusCodes.BadConnectionClosed,
    StatusCodes.BadServerNotConnected,
    StatusCodes.BadCommunicationError,
    StatusCodes.BadShutdown,
    StatusCodes.BadTimeout,
}
_LOGIN_STATUS = {
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadIdentityTokenRejected,
}


def to_variant(value: Value, vtype: ua.VariantType, what: str = "value") -> ua.Variant:
    """``value`` as a Variant of exactly ``vtype``, or PointError if it cannot be one."""
    if vtype in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PointError(f"{what}: {value!r} is not an integer for a {vtype.name} node")
        low, high = _INT_RANGES[vtype]
        if not low <= value <= high:
            raise PointError(f"{what}: {value} is outside {vtype.name} range {low}..{high}")
        return ua.Variant(value, vtype)
    if vtype in (_VT.Float, _VT.Double):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PointError(f"{what}: {value!r} is not a number for a {vtype.name} node")
        number = float(value)
        if vtype is _VT.Float and math.isfinite(number) and abs(number) > _FLOAT32_MAX:
            raise PointError(f"{what}: {value} is outside Float range")
        return ua.Variant(number, vtype)
    if vtype is _VT.Boolean:
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            value = bool(value)
        if not isinstance(value, bool):
            raise PointError(f"{what}: {value!r} is not a Boolean (True/False, 0/1)")
        return ua.Variant(value, vtype)
    if vtype is _VT.String and isinstance(value, str):
        return ua.Variant(value, vtype)
    if vtype is _VT.ByteString and isinstance(value, bytes):
        return ua.Variant(value, vtype)
    raise PointError(f"{what}: cannot write {type(value).__name__} to a {vtype.name} node")


def _same(sent: ua.Variant, back: Value | None) -> bool:
    if sent.VariantType is _VT.Float and isinstance(back, float):
        rounded: float = struct.unpack("f", struct.pack("f", sent.Value))[0]
        return back == rounded or back == sent.Value
    return bool(back == sent.Value)


def to_value(raw: Any) -> Value | None:
    """A decoded OPC UA value as a driver Value (timestamps as ISO text, texts as str)."""
    if raw is None or isinstance(raw, bool | int | float | str | bytes):
        return raw
    if isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, ua.LocalizedText):
        return raw.Text or ""
    return str(raw)


def quality_of(status: ua.StatusCode | None) -> tuple[Quality, str]:
    if status is None or status.is_good():
        return Quality.GOOD, ""
    if status.is_uncertain():
        return Quality.UNCERTAIN, status.name
    return Quality.BAD, status.name


def sample_of(point: str, dv: ua.DataValue, now: datetime | None = None) -> Sample:
    quality, reason = quality_of(dv.StatusCode)
    value = to_value(dv.Value.Value) if dv.Value is not None else None
    src = dv.SourceTimestamp
    if src is not None and src.tzinfo is None:
        src = src.replace(tzinfo=UTC)
    return Sample(point, value, quality, reason, src, now or utc_now())


def _all_bad(points: Sequence[str], reason: str) -> list[Sample]:
    return [Sample(p, None, Quality.BAD, reason) for p in points]


def describe(exc: BaseException) -> str:
    """Text an engineer can act on, for link and login failures."""
    if isinstance(exc, UaStatusCodeError):
        code = ua.StatusCode(exc.code)
        return f"{code.name} ({code.doc})" if code.doc else code.name
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _status_code(exc: BaseException) -> int | None:
    return exc.code if isinstance(exc, UaStatusCodeError) else None


def _is_link_error(exc: BaseException) -> bool:
    return isinstance(exc, _LINK_ERRORS) or _status_code(exc) in _LINK_STATUS


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


class _Counter(Observer):
    """Counts notifications asyncua queued per subscription, to report drops."""

    def __init__(self) -> None:
        self.produced: dict[int, int] = {}

    def observe_request(self, request: Any) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def on_notification(self, subscription_id: int | None, event_count: int) -> None:
        if subscription_id is not None:
            self.produced[subscription_id] = self.produced.get(subscription_id, 0) + event_count


@dataclass(eq=False)
class _Sub:
    points: tuple[str, ...]
    callback: SampleCallback
    ua_sub: Subscription | None = None
    counter: _Counter | None = None
    task: asyncio.Task[None] | None = None
    pending: list[Sample] = field(default_factory=list)
    flush_due: bool = False
    consumed: int = 0


class OpcUaDriver:
    """Driver, Subscribing, MethodCalling and DeviceClock for one OPC UA server."""

    def __init__(
        self,
        name: str,
        settings: OpcUaSettings,
        points: Sequence[OpcUaPoint],
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self._settings = settings
        self._points: dict[str, OpcUaPoint] = {}
        for p in points:
            if p.name in self._points:
                raise PointError(f"{name}: point {p.name!r} declared twice")
            self._points[p.name] = p
        self._sleep = sleep
        self._link = LinkState.DOWN
        self._link_reason = "not started"
        self._link_callbacks: list[LinkCallback] = []
        self._subs: list[_Sub] = []
        self._client: Client | None = None
        self._counter = _Counter()
        self._lost: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._types: dict[str, ua.VariantType] = {}
        self._arg_types: dict[str, list[ua.VariantType]] = {}
        self._dropped = 0
        self.last_error = ""
        self.reconnects = 0

    # -- link state ---------------------------------------------------------

    @property
    def link_state(self) -> LinkState:
        return self._link

    @property
    def dropped_notifications(self) -> int:
        """Notifications lost because the bounded queue overflowed (oldest dropped)."""
        live = sum(self._overflowed(sub) for sub in self._subs)
        return self._dropped + live

    def on_link_change(self, callback: LinkCallback) -> None:
        self._link_callbacks.append(callback)

    def _set_link(self, state: LinkState, reason: str) -> None:
        self._link_reason = reason
        if state is self._link:
            return
        self._link = state
        _log.info("%s: link %s %s", self.name, state.value, reason)
        for cb in list(self._link_callbacks):
            try:
                cb(state, reason)
            except Exception:
                _log.exception("%s: link callback failed", self.name)

    def _go_down(self, reason: str) -> None:
        if self._link is LinkState.DOWN:
            self._link_reason = reason
            return
        for sub in self._subs:
            self._detach(sub)
        self._set_link(LinkState.DOWN, reason)
        for sub in self._subs:
            self._emit(sub, _all_bad(sub.points, f"link down: {reason}"))

    def _link_lost(self, client: Client, reason: str) -> None:
        if client is not self._client or self._lost is None or self._lost.is_set():
            return
        self.last_error = reason
        self._go_down(reason)
        self._lost.set()

    async def _on_connection_lost(self, client: Client, exc: Exception) -> None:
        self._link_lost(client, describe(exc))

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None and not self._runner.done():
            return
        self._stopping = False
        self._set_link(LinkState.CONNECTING, "connecting")
        first = asyncio.Event()
        self._runner = asyncio.create_task(self._run(first), name=f"opcua:{self.name}")
        waiter = asyncio.ensure_future(first.wait())
        await asyncio.wait({waiter, self._runner}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._stopping = True
        if runner is not None:
            await cancel_and_wait([runner])
        self._go_down("driver stopped")
        client, self._client = self._client, None
        if client is not None:
            await close_client(client, self._settings.request_timeout_s)

    async def _run(self, first: asyncio.Event) -> None:
        s = self._settings
        attempt = 0
        while not self._stopping:
            self._lost = asyncio.Event()
            try:
                counter = _Counter()
                client = await open_client(s, counter)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = str(exc) if isinstance(exc, DriverError) else describe(exc)
                level = logging.DEBUG if error == self.last_error else logging.WARNING
                _log.log(level, "%s: connect to %s failed: %s", self.name, s.endpoint, error)
                self.last_error = error
                self._go_down(self.last_error)
                first.set()
                await self._sleep(min(s.backoff_initial_s * 2**attempt, s.backoff_max_s))
                attempt += 1
                continue
            self._client = client
            self._counter = counter
            client.connection_lost_callback = functools.partial(self._on_connection_lost, client)
            try:
                for sub in self._subs:
                    await self._attach(client, sub)
            except Exception as exc:
                self._link_lost(client, describe(exc))
            if not self._lost.is_set():
                attempt = 0
                self.last_error = ""
                self._set_link(LinkState.UP, "")
            first.set()
            await self._lost.wait()
            self._client = None
            self.reconnects += 1
            await close_client(client, s.request_timeout_s)
            await self._sleep(min(s.backoff_initial_s * 2**attempt, s.backoff_max_s))
            attempt += 1

    # -- subscriptions ------------------------------------------------------

    async def subscribe(self, points: Sequence[str], callback: SampleCallback) -> None:
        for p in points:
            self._point(p)
        sub = _Sub(tuple(points), callback)
        self._subs.append(sub)
        client = self._client
        if client is None or self._link is not LinkState.UP:
            self._emit(sub, _all_bad(sub.points, f"link down: {self._link_reason}"))
            return
        try:
            await self._attach(client, sub)
        except Exception as exc:
            if not _is_link_error(exc):
                raise DeviceRefused(f"{self.name}: subscribe refused: {describe(exc)}") from exc
            self._link_lost(client, describe(exc))

    async def _attach(self, client: Client, sub: _Sub) -> None:
        """One asyncua subscription per ``subscribe`` call, monitored items keyed by index."""
        s = self._settings
        self._detach(sub)
        ua_sub = await client.create_subscription(
            s.publishing_interval_ms,
            queue_maxsize=s.queue_size,
            overflow=OverflowPolicy.DROP_OLDEST,
        )
        sub.ua_sub, sub.consumed, sub.pending = ua_sub, 0, []
        sub.counter = self._counter
        sub.task = asyncio.create_task(self._consume(sub, ua_sub), name=f"opcua:{self.name}:sub")
        requests = []
        for handle, point in enumerate(sub.points, start=1):
            params = ua.MonitoringParameters(
                ClientHandle=ua.UInt32(handle),
                SamplingInterval=s.sampling_interval_ms,
                QueueSize=ua.UInt32(1),
                DiscardOldest=True,
            )
            item = ua.ReadValueId(
                NodeId=self._node_id(point), AttributeId=ua.UInt32(AttributeIds.Value)
            )
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=item,
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=params,
                )
            )
        results = await ua_sub.create_monitored_items(requests)
        if client is not self._client:
            self._detach(sub)
            return
        failed = [
            Sample(point, None, Quality.BAD, result.name)
            for point, result in zip(sub.points, results, strict=True)
            if isinstance(result, ua.StatusCode)
        ]
        if failed:
            self._emit(sub, failed)

    def _detach(self, sub: _Sub) -> None:
        self._flush(sub)
        if sub.task is not None:
            sub.task.cancel()
        self._dropped += self._overflowed(sub)
        sub.ua_sub, sub.task = None, None

    def _overflowed(self, sub: _Sub) -> int:
        if sub.ua_sub is None or sub.ua_sub.subscription_id is None or sub.counter is None:
            return 0
        produced = sub.counter.produced.get(sub.ua_sub.subscription_id, 0)
        queue = getattr(sub.ua_sub, "_event_queue", None)
        queued = queue.qsize() if isinstance(queue, asyncio.Queue) else 0
        return max(0, produced - sub.consumed - queued)

    async def _consume(self, sub: _Sub, ua_sub: Subscription) -> None:
        loop = asyncio.get_running_loop()
        now = utc_now()
        points = sub.points
        async for event in ua_sub:
            if sub.ua_sub is not ua_sub:
                return
            sub.consumed += 1
            if isinstance(event, DataChangeEvent):
                item = event.data.monitored_item
                index = item.ClientHandle - 1
                if not 0 <= index < len(points):
                    continue
                if not sub.pending:
                    now = utc_now()
                sub.pending.append(sample_of(points[index], item.Value, now))
                if not sub.flush_due:
                    sub.flush_due = True
                    loop.call_soon(self._flush, sub)
            elif isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if status.is_bad() and self._client is not None:
                    self._link_lost(self._client, f"subscription {status.name}")

    def _flush(self, sub: _Sub) -> None:
        sub.flush_due = False
        if sub.pending:
            batch, sub.pending = sub.pending, []
            self._emit(sub, batch)

    def _emit(self, sub: _Sub, samples: list[Sample]) -> None:
        try:
            sub.callback(samples)
        except Exception:
            _log.exception("%s: sample callback failed", self.name)

    # -- reads, writes, methods ---------------------------------------------

    def _point(self, name: str) -> OpcUaPoint:
        point = self._points.get(name)
        if point is None:
            raise PointError(f"{self.name}: unknown point {name!r}")
        return point

    def _node_id(self, name: str) -> ua.NodeId:
        return ua.NodeId.from_string(self._point(name).node_id)

    @contextlib.contextmanager
    def _request(self, what: str) -> Iterator[Client]:
        """The live client; link errors mark the link lost and become LinkDown."""
        client = self._client
        if client is None or self._link is not LinkState.UP:
            raise LinkDown(f"{self.name}: {what}: link down: {self._link_reason}")
        try:
            yield client
        except DriverError:
            raise
        except Exception as exc:
            if _is_link_error(exc):
                self._link_lost(client, describe(exc))
                raise LinkDown(f"{self.name}: {what}: {describe(exc)}") from exc
            raise DeviceRefused(f"{self.name}: {what}: {describe(exc)}") from exc

    async def read(self, points: Sequence[str]) -> list[Sample]:
        node_ids = [self._node_id(p) for p in points]
        if self._client is None or self._link is not LinkState.UP:
            return _all_bad(points, f"link down: {self._link_reason}")
        try:
            with self._request("read") as client:
                values = await client.uaclient.read_attributes(node_ids, AttributeIds.Value)
        except LinkDown:
            return _all_bad(points, f"link down: {self._link_reason}")
        now = utc_now()
        return [sample_of(p, dv, now) for p, dv in zip(points, values, strict=True)]

    async def _variant_type(self, client: Client, point: str) -> ua.VariantType:
        node_id = self._point(point).node_id
        cached = self._types.get(node_id)
        if cached is not None:
            return cached
        node = client.get_node(node_id)
        vtype = await node.read_data_type_as_variant_type()
        if vtype in (_VT.Variant, _VT.Null):
            current = await node.read_data_value(raise_on_bad_status=False)
            vtype = current.Value.VariantType if current.Value is not None else _VT.Null
            if vtype is _VT.Null:
                raise PointError(f"{self.name}: {point}: node has an abstract DataType")
        self._types[node_id] = vtype
        return vtype

    async def write(self, point: str, value: Value) -> Sample:
        if not self._point(point).writable:
            raise PointError(f"{self.name}: point {point!r} is not writable")
        node_id = self._node_id(point)
        with self._request(f"write {point}") as client:
            vtype = await self._variant_type(client, point)
            variant = to_variant(value, vtype, f"{self.name}: {point}")
            dv = ua.DataValue(variant, StatusCode=None)
            (status,) = await client.uaclient.write_attributes([node_id], [dv], AttributeIds.Value)
            if not status.is_good():
                raise DeviceRefused(f"{self.name}: write {point} refused: {status.name}")
            (back,) = await client.uaclient.read_attributes([node_id], AttributeIds.Value)
        sample = sample_of(point, back)
        if not sample.good or not _same(variant, sample.value):
            raise WriteNotConfirmed(
                f"{self.name}: wrote {variant.Value!r} to {point}, read back "
                f"{sample.value!r} ({sample.quality.value} {sample.reason})".rstrip()
            )
        return sample

    async def _input_types(self, client: Client, method_id: str) -> list[ua.VariantType]:
        cached = self._arg_types.get(method_id)
        if cached is not None:
            return cached
        types: list[ua.VariantType] = []
        method = client.get_node(method_id)
        for ref in await method.get_references(ObjectIds.HasProperty, ua.BrowseDirection.Forward):
            if ref.BrowseName.Name == "InputArguments":
                args = await client.get_node(ref.NodeId).read_value()
                for arg in args or []:
                    types.append(await _argument_type(client, arg.DataType))
        self._arg_types[method_id] = types
        return types

    async def call(self, object_id: str, method_id: str, *args: Value) -> list[Value]:
        with self._request(f"call {method_id}") as client:
            types = await self._input_types(client, method_id)
            if len(types) != len(args):
                raise PointError(f"{self.name}: {method_id} takes {len(types)} arguments")
            inputs = [
                to_variant(a, t, f"{method_id} argument {i + 1}")
                for i, (a, t) in enumerate(zip(args, types, strict=True))
            ]
            request = ua.CallMethodRequest(
                ObjectId=ua.NodeId.from_string(object_id),
                MethodId=ua.NodeId.from_string(method_id),
                InputArguments=inputs,
            )
            (result,) = await client.uaclient.call([request])
        if not result.StatusCode.is_good():
            raise DeviceRefused(f"{self.name}: call {method_id} refused: {result.StatusCode.name}")
        outputs = [to_value(o.Value) for o in result.OutputArguments or []]
        if any(v is None for v in outputs):
            raise DeviceRefused(f"{self.name}: call {method_id} returned a null output")
        return [v for v in outputs if v is not None]

    async def device_time(self) -> datetime:
        """The server's clock: ``Server_ServerStatus_CurrentTime`` (i=2258), as UTC.

        Every OPC UA server has this node. Servers refresh it on their own
        schedule (asyncua once a second), so it is as exact as that period.
        """
        node_id = ua.NodeId(ua.Int32(ObjectIds.Server_ServerStatus_CurrentTime))
        with self._request("read server time") as client:
            (dv,) = await client.uaclient.read_attributes([node_id], AttributeIds.Value)
        good = dv.StatusCode is None or dv.StatusCode.is_good()
        value = dv.Value.Value if good and dv.Value is not None else None
        if not isinstance(value, datetime):
            raise DeviceRefused(f"{self.name}: the server did not give its current time")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _argument_type(client: Client, data_type: ua.NodeId) -> ua.VariantType:
    ident = data_type.Identifier
    if data_type.NamespaceIndex == 0 and isinstance(ident, int) and 1 <= ident <= 25:
        return _VT(ident)
    return await data_type_to_variant_type(client.get_node(data_type))


# -- browse -----------------------------------------------------------------

_BROWSE_CLASSES = ua.NodeClass.Object | ua.NodeClass.Variable | ua.NodeClass.Method


async def browse(
    url: str,
    *,
    depth: int = 3,
    root: str = "i=85",
    settings: OpcUaSettings | None = None,
    include_standard: bool = False,
) -> list[BrowseEntry]:
    """Objects, variables and methods below ``root`` (default: the Objects folder).

    For filling in tag addresses: each entry has the node id, a browse path of
    names, the node class, the variable's DataType and whether it is writable.
    Standard (namespace 0) nodes such as the Server object are skipped unless
    ``include_standard``. ``settings`` gives security and identity.
    """
    conf = dataclasses.replace(settings or OpcUaSettings(url), endpoint=url)
    client = await open_client(conf)
    try:
        return await _browse(client, ua.NodeId.from_string(root), depth, include_standard)
    finally:
        await close_client(client, conf.request_timeout_s)


async def _browse(
    client: Client, root: ua.NodeId, depth: int, include_standard: bool
) -> list[BrowseEntry]:
    found: list[tuple[ua.ReferenceDescription, str]] = []
    level: list[tuple[ua.NodeId, str]] = [(root, "")]
    seen = {root}
    for _ in range(depth):
        if not level:
            break
        descs = [
            ua.BrowseDescription(
                NodeId=nid,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences)),
                IncludeSubtypes=True,
                NodeClassMask=ua.UInt32(_BROWSE_CLASSES),
                ResultMask=ua.UInt32(ua.BrowseResultMask.All),
            )
            for nid, _ in level
        ]
        results = await client.uaclient.browse(ua.BrowseParameters(NodesToBrowse=descs))
        next_level: list[tuple[ua.NodeId, str]] = []
        for (_, path), result in zip(level, results, strict=True):
            refs = list(result.References)
            point = result.ContinuationPoint
            while point:
                (more,) = await client.uaclient.browse_next(
                    ua.BrowseNextParameters(ContinuationPoints=[point])
                )
                refs += more.References
                point = more.ContinuationPoint
            for ref in refs:
                nid = ref.NodeId
                if nid in seen or (nid.NamespaceIndex == 0 and not include_standard):
                    continue
                seen.add(nid)
                child = f"{path}/{ref.BrowseName.Name}" if path else str(ref.BrowseName.Name)
                found.append((ref, child))
                if ref.NodeClass != ua.NodeClass.Method:
                    next_level.append((nid, child))
        level = next_level
    variables = [ref.NodeId for ref, _ in found if ref.NodeClass == ua.NodeClass.Variable]
    dtypes = await client.uaclient.read_attributes(variables, AttributeIds.DataType)
    access = await client.uaclient.read_attributes(variables, AttributeIds.UserAccessLevel)
    info: dict[ua.NodeId, tuple[str, bool]] = {}
    for nid, dt, al in zip(variables, dtypes, access, strict=True):
        dt_id = dt.Value.Value if dt.Value is not None else None
        level_bits = al.Value.Value if al.Value is not None and al.Value.Value is not None else 0
        writable = bool(int(level_bits) & (1 << ua.AccessLevel.CurrentWrite))
        info[nid] = (await _type_name(client, dt_id), writable)
    entries = []
    for ref, path in found:
        dtype, writable = info.get(ref.NodeId, ("", False))
        entries.append(
            BrowseEntry(ref.NodeId.to_string(), path, ref.NodeClass.name, dtype, writable)
        )
    return entries


async def _type_name(client: Client, dtype: Any) -> str:
    if not isinstance(dtype, ua.NodeId):
        return ""
    ident = dtype.Identifier
    if dtype.NamespaceIndex == 0 and isinstance(ident, int) and 1 <= ident <= 25:
        return _VT(ident).name
    try:
        name = await client.get_node(dtype).read_browse_name()
    except Exception:
        return dtype.to_string()
    return str(name.Name)


def format_browse(entries: Sequence[BrowseEntry]) -> str:
    """A plain-text table of ``entries`` for a terminal."""
    header = ("NODE ID", "PATH", "CLASS", "TYPE", "RW")
    rows = [header]
    for e in entries:
        access = "rw" if e.writable else ("r" if e.node_class == "Variable" else "")
        rows.append((e.node_id, e.path, e.node_class, e.data_type, access))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
