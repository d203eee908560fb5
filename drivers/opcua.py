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
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from asyncua.observer import Observer
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

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
from drivers.opcua_browse import BrowseEntry, browse, format_browse
from drivers.opcua_client import (
    OpcUaPoint,
    OpcUaSettings,
    SecurityMode,
    SecurityPolicy,
    close_client,
    open_client,
)
from drivers.opcua_values import (
    _all_bad,
    _is_link_error,
    _same,
    describe,
    sample_of,
    to_value,
    to_variant,
)

__all__ = [
    "BrowseEntry",
    "OpcUaDriver",
    "OpcUaPoint",
    "OpcUaSettings",
    "SecurityMode",
    "SecurityPolicy",
    "browse",
    "close_client",
    "describe",
    "format_browse",
    "open_client",
    "sample_of",
    "to_value",
    "to_variant",
]

_log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
_VT = ua.VariantType


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
