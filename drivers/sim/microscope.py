"""A simulated microscope served over OPC UA, for tests, demos and benchmarks.

It behaves like the instruments Custos talks to: setpoints that actual values
follow over time, a derived "ready" signal, a camera method returning PNG
bytes, optional Basic256Sha256 security with a username/password login, and a
"strict" mode that refuses writes the way S7-1500, Kepware and open62541 do
(timestamps in the written DataValue, or a Variant type other than the node's
DataType). The node map is documented in docs/sim-plant-opcua.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hmac
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC
from functools import lru_cache
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeService
from asyncua.server.internal_server import InternalServer
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from PIL import Image, ImageDraw, ImageFilter

from drivers.sim.serving import Serving

NAMESPACE_URI = "urn:custos:sim:microscope"
APPLICATION_URI = "urn:custos:sim:microscope-server"

MIC1 = "ns=2;s=MIC1"
STAGE_X = "ns=2;s=MIC1.StageX"
STAGE_Y = "ns=2;s=MIC1.StageY"
STAGE_X_ACTUAL = "ns=2;s=MIC1.StageXActual"
STAGE_Y_ACTUAL = "ns=2;s=MIC1.StageYActual"
STAGE_MOVING = "ns=2;s=MIC1.StageMoving"
FOCUS = "ns=2;s=MIC1.Focus"
FOCUS_ACTUAL = "ns=2;s=MIC1.FocusActual"
ILLUMINATION = "ns=2;s=MIC1.Illumination"
ILLUMINATION_ACTUAL = "ns=2;s=MIC1.IlluminationActual"
OBJECTIVE = "ns=2;s=MIC1.Objective"
STAGE_READY = "ns=2;s=MIC1.StageReady"
SERVER_TIME = "ns=2;s=MIC1.ServerTime"
CAPTURE_COUNT = "ns=2;s=MIC1.CaptureCount"
CAMERA = "ns=2;s=MIC1.Camera"
CAPTURE = "ns=2;s=MIC1.Camera.Capture"

STAGE_SPEED_UM_S = 2000.0
FOCUS_SPEED_UM_S = 200.0
ILLUMINATION_TAU_S = 0.3
FOCUS_TOLERANCE_UM = 2.0
IMAGE_SIZE = (320, 240)
BENCH_GROUP_SIZE = 100

_ADMIN = User(role=UserRole.Admin)
_VT = ua.VariantType


def bench_node_id(index: int) -> str:
    """Node id of benchmark signal ``index`` (present when ``bench_signals`` > index)."""
    return f"ns=2;s=BENCH.S{index:05d}"


@lru_cache(maxsize=16384)
def _nid(node_id: str) -> ua.NodeId:
    return ua.NodeId.from_string(node_id)


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


def _dtype(vtype: ua.VariantType) -> ua.NodeId:
    return ua.NodeId(ua.Int32(vtype.value))


def _now() -> ua.DateTime:
    return ua.DateTime.now(UTC)


class SimPolicy(enum.Enum):
    """Endpoints the simulator can offer."""

    NONE = "None"
    BASIC256SHA256_SIGN = "Basic256Sha256_Sign"
    BASIC256SHA256_SIGN_AND_ENCRYPT = "Basic256Sha256_SignAndEncrypt"


_POLICY_TYPES = {
    SimPolicy.NONE: ua.SecurityPolicyType.NoSecurity,
    SimPolicy.BASIC256SHA256_SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
    SimPolicy.BASIC256SHA256_SIGN_AND_ENCRYPT: ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}


@dataclasses.dataclass
class MicroscopeState:
    """The physical state, kept outside the address space so it survives a server restart."""

    stage_x_sp: float = 0.0
    stage_y_sp: float = 0.0
    focus_sp: float = 1000.0
    illumination_sp: float = 50.0
    objective: int = 1
    stage_x: float = 0.0
    stage_y: float = 0.0
    focus: float = 1000.0
    illumination: float = 50.0
    capture_count: int = 0
    steps: int = 0
    sim_time: float = 0.0


def render_frame(
    stage_x: float, stage_y: float, focus_error: float, illumination: float, exposure_ms: float
) -> bytes:
    """A PNG of a specimen grid seen through the microscope.

    The grid is fixed in specimen coordinates (1 px = 1 µm), so moving the stage
    shifts it; blur grows with the focus error and brightness with illumination
    times exposure. The stage position is printed in the corner.
    """
    width, height = IMAGE_SIZE
    img = Image.new("L", IMAGE_SIZE, 10)
    draw = ImageDraw.Draw(img)
    pitch = 40
    x0 = -(math.floor(stage_x) % pitch)
    y0 = -(math.floor(stage_y) % pitch)
    for gx in range(x0 - pitch, width + pitch, pitch):
        for gy in range(y0 - pitch, height + pitch, pitch):
            cx = (gx - x0 + math.floor(stage_x)) // pitch
            cy = (gy - y0 + math.floor(stage_y)) // pitch
            radius = 4 + (cx * 7 + cy * 13) % 9
            draw.ellipse((gx - radius, gy - radius, gx + radius, gy + radius), fill=200)
        draw.line((gx, 0, gx, height), fill=90)
    blur = min(abs(focus_error) * 0.5, 25.0)
    if blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    gain = max(0.0, illumination) / 50.0 * max(0.0, exposure_ms) / 10.0
    img = img.point([min(255, round(v * gain)) for v in range(256)])
    ImageDraw.Draw(img).text((4, 4), f"X {stage_x:.1f} um  Y {stage_y:.1f} um", fill=255)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


class _Users(UserManager):
    """Username/password check for the simulator; never grants the Admin role."""

    def __init__(self, users: Mapping[str, str] | None) -> None:
        self._users = dict(users or {})

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if not self._users:
            return User(role=UserRole.User)
        expected = self._users.get(username or "")
        given = (password or "").encode()
        if expected is None or not hmac.compare_digest(expected.encode(), given):
            return None
        return User(role=UserRole.User, name=username)


_CURRENT_TIME = ua.NodeId(ua.Int32(ObjectIds.Server_ServerStatus_CurrentTime))


class _GuardedAttributeService(AttributeService):
    """Client writes pass range limits and, in strict mode, the rules real PLCs apply.

    Writes by the server itself (the Admin internal session) are not checked.
    """

    def __init__(
        self, aspace: AddressSpace, limits: Mapping[ua.NodeId, tuple[float, float]]
    ) -> None:
        super().__init__(aspace)
        self.strict = False
        self._limits = dict(limits)

    def read(self, params: ua.ReadParameters) -> list[ua.DataValue]:
        """As a real server: ``CurrentTime`` is the clock at the moment of the read.

        asyncua's own once-a-second refresh is disabled (``disable_clock``) so
        that tests stepping the simulation see no background writes.
        """
        results = super().read(params)
        for i, item in enumerate(params.NodesToRead):
            if item.NodeId == _CURRENT_TIME and item.AttributeId == AttributeIds.Value:
                now = _now()
                results[i] = ua.DataValue(
                    ua.Variant(now, ua.VariantType.DateTime), ServerTimestamp=now
                )
        return results

    async def write(self, params: ua.WriteParameters, user: User = _ADMIN) -> list[ua.StatusCode]:
        if user.role is UserRole.Admin:
            return await super().write(params, user)
        results: list[ua.StatusCode] = []
        for item in params.NodesToWrite:
            refusal = self._refusal(item)
            if refusal is not None:
                results.append(_status(refusal))
                continue
            results += await super().write(ua.WriteParameters(NodesToWrite=[item]), user)
        return results

    def _refusal(self, item: ua.WriteValue) -> int | None:
        if item.AttributeId != AttributeIds.Value:
            return None
        dv = item.Value
        variant = dv.Value
        if self.strict:
            if dv.SourceTimestamp is not None or dv.ServerTimestamp is not None:
                return StatusCodes.BadWriteNotSupported
            dtype = self._aspace.read_attribute_value(item.NodeId, AttributeIds.DataType).Value
            expected = _builtin_type(dtype.Value if dtype is not None else None)
            if expected is not None and (variant is None or variant.VariantType != expected):
                return StatusCodes.BadTypeMismatch
        limits = self._limits.get(item.NodeId)
        if limits is not None and variant is not None:
            value = variant.Value
            if isinstance(value, int | float) and not limits[0] <= value <= limits[1]:
                return StatusCodes.BadOutOfRange
        return None


class MicroscopeServer(Serving):
    """``async with MicroscopeServer() as srv:`` serves MIC1 on ``srv.url``.

    ``tick`` seconds between real-time steps; ``None`` runs no background task
    so tests advance time with ``step``. ``stop`` then ``start`` restarts on the
    same port with the same physical state, like an instrument reboot.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        policies: Sequence[SimPolicy] = (SimPolicy.NONE,),
        certificate: Path | None = None,
        private_key: Path | None = None,
        users: Mapping[str, str] | None = None,
        strict: bool = False,
        tick: float | None = 0.1,
        best_focus: float = 1234.5,
        bench_signals: int = 0,
    ) -> None:
        secure = any(p is not SimPolicy.NONE for p in policies)
        if secure and (certificate is None or private_key is None):
            raise ValueError("Basic256Sha256 endpoints need a server certificate and private key")
        self.host = host
        self.port = port
        self.state = MicroscopeState()
        self.best_focus = best_focus
        self._strict = strict
        self._policies = tuple(policies)
        self._certificate = certificate
        self._private_key = private_key
        self._users = _Users(users)
        self._anonymous = not users
        self._tick = tick
        self._bench_signals = bench_signals
        self._server: Server | None = None
        self._service: _GuardedAttributeService | None = None
        self._runner: asyncio.Task[None] | None = None
        self._faults: dict[str, ua.StatusCode] = {}
        self._published: dict[str, object] = {}
        self._types: dict[str, ua.VariantType] = {}

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def strict(self) -> bool:
        return self._strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._strict = value
        if self._service is not None:
            self._service.strict = value

    async def start(self) -> None:
        server = Server(user_manager=self._users)
        limits = {
            _nid(ILLUMINATION): (0.0, 100.0),
            _nid(FOCUS): (0.0, 5000.0),
            _nid(STAGE_X): (-50000.0, 50000.0),
            _nid(STAGE_Y): (-50000.0, 50000.0),
            _nid(OBJECTIVE): (1, 6),
        }
        self._service = _GuardedAttributeService(server.iserver.aspace, limits)
        self._service.strict = self._strict
        server.iserver.attribute_service = self._service
        await server.init()
        server.disable_clock()
        server.set_server_name("Custos simulated microscope")
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}")
        await server.set_application_uri(APPLICATION_URI)
        server.set_security_policy([_POLICY_TYPES[p] for p in self._policies])
        tokens: list[type] = [ua.UserNameIdentityToken]
        if self._anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if self._certificate is not None and self._private_key is not None:
            await server.load_certificate(str(self._certificate))
            await server.load_private_key(str(self._private_key))
        idx = await server.register_namespace(NAMESPACE_URI)
        if idx != 2:
            raise RuntimeError(f"namespace {NAMESPACE_URI} got index {idx}, node ids assume 2")
        await self._build(server)
        await server.start()
        if server.bserver is not None:
            self.port = server.bserver.port
        self._server = server
        self._published.clear()
        await self._publish()
        if self._tick is not None:
            self._runner = asyncio.create_task(self._run(self._tick))

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def _build(self, server: Server) -> None:
        s = self.state
        mic = await server.nodes.objects.add_object(_nid(MIC1), "2:MIC1")

        async def var(
            nid: str, value: object, vtype: ua.VariantType, writable: bool = False
        ) -> None:
            node_id = _nid(nid)
            name = f"2:{nid.split('.', 1)[1]}"
            node = await mic.add_variable(node_id, name, value, vtype, _dtype(vtype))
            if writable:
                await node.set_writable()

        await var(STAGE_X, s.stage_x_sp, _VT.Double, writable=True)
        await var(STAGE_Y, s.stage_y_sp, _VT.Double, writable=True)
        await var(FOCUS, s.focus_sp, _VT.Double, writable=True)
        await var(ILLUMINATION, s.illumination_sp, _VT.Double, writable=True)
        await var(OBJECTIVE, s.objective, _VT.Int16, writable=True)
        await var(STAGE_X_ACTUAL, s.stage_x, _VT.Double)
        await var(STAGE_Y_ACTUAL, s.stage_y, _VT.Double)
        await var(FOCUS_ACTUAL, s.focus, _VT.Double)
        await var(ILLUMINATION_ACTUAL, s.illumination, _VT.Double)
        await var(STAGE_MOVING, False, _VT.Boolean)
        await var(STAGE_READY, False, _VT.Boolean)
        await var(SERVER_TIME, _now(), _VT.DateTime)
        await var(CAPTURE_COUNT, s.capture_count, _VT.UInt32)
        camera = await mic.add_object(_nid(CAMERA), "2:Camera")

        def arg(name: str, vtype: ua.VariantType, text: str) -> ua.Argument:
            return ua.Argument(
                Name=name,
                DataType=_dtype(vtype),
                ValueRank=-1,
                Description=ua.LocalizedText(text),
            )

        await camera.add_method(
            _nid(CAPTURE),
            "2:Capture",
            self._capture,
            [arg("ExposureMs", _VT.Double, "exposure time in ms, 0 < t <= 10000")],
            [
                arg("Image", _VT.ByteString, "PNG image"),
                arg("Width", _VT.UInt32, "image width in pixels"),
                arg("Height", _VT.UInt32, "image height in pixels"),
                arg("Settings", _VT.String, "camera and microscope settings as JSON"),
            ],
        )
        groups = math.ceil(self._bench_signals / BENCH_GROUP_SIZE)
        if groups:
            bench = await server.nodes.objects.add_object(_nid("ns=2;s=BENCH"), "2:BENCH")
            for g in range(groups):
                parent = await bench.add_object(_nid(f"ns=2;s=BENCH.G{g:03d}"), f"2:G{g:03d}")
                first = g * BENCH_GROUP_SIZE
                for i in range(first, min(first + BENCH_GROUP_SIZE, self._bench_signals)):
                    nid = _nid(bench_node_id(i))
                    dtype = _dtype(_VT.Double)
                    await parent.add_variable(nid, f"2:S{i:05d}", 0.0, _VT.Double, dtype)

    def _setpoint(self, nid: str, default: float) -> float:
        assert self._server is not None
        dv = self._server.iserver.aspace.read_attribute_value(_nid(nid), AttributeIds.Value)
        value = dv.Value.Value if dv.Value is not None else None
        return float(value) if isinstance(value, int | float) else default

    @property
    def stage_moving(self) -> bool:
        s = self.state
        return abs(s.stage_x - s.stage_x_sp) > 1e-6 or abs(s.stage_y - s.stage_y_sp) > 1e-6

    @property
    def stage_ready(self) -> bool:
        in_focus = abs(self.state.focus - self.best_focus) <= FOCUS_TOLERANCE_UM
        return in_focus and not self.stage_moving

    async def step(self, dt: float) -> None:
        """Advance the dynamics by ``dt`` seconds and publish the new values."""
        if self._server is None:
            raise RuntimeError("server not started")
        s = self.state
        s.stage_x_sp = self._setpoint(STAGE_X, s.stage_x_sp)
        s.stage_y_sp = self._setpoint(STAGE_Y, s.stage_y_sp)
        s.focus_sp = self._setpoint(FOCUS, s.focus_sp)
        s.illumination_sp = self._setpoint(ILLUMINATION, s.illumination_sp)
        s.objective = int(self._setpoint(OBJECTIVE, s.objective))
        s.stage_x = _approach(s.stage_x, s.stage_x_sp, STAGE_SPEED_UM_S * dt)
        s.stage_y = _approach(s.stage_y, s.stage_y_sp, STAGE_SPEED_UM_S * dt)
        s.focus = _approach(s.focus, s.focus_sp, FOCUS_SPEED_UM_S * dt)
        lag = 1 - math.exp(-dt / ILLUMINATION_TAU_S)
        s.illumination += (s.illumination_sp - s.illumination) * lag
        if abs(s.illumination - s.illumination_sp) < 1e-3:
            s.illumination = s.illumination_sp
        s.sim_time += dt
        s.steps += 1
        await self._publish()

    async def _publish(self) -> None:
        assert self._server is not None
        s = self.state
        now = _now()
        values: list[tuple[str, object, ua.VariantType]] = [
            (STAGE_X_ACTUAL, s.stage_x, _VT.Double),
            (STAGE_Y_ACTUAL, s.stage_y, _VT.Double),
            (FOCUS_ACTUAL, s.focus, _VT.Double),
            (ILLUMINATION_ACTUAL, s.illumination, _VT.Double),
            (STAGE_MOVING, self.stage_moving, _VT.Boolean),
            (STAGE_READY, self.stage_ready, _VT.Boolean),
            (CAPTURE_COUNT, s.capture_count, _VT.UInt32),
            (SERVER_TIME, now, _VT.DateTime),
        ]
        values += [
            (bench_node_id(i), float(s.steps + i), _VT.Double) for i in range(self._bench_signals)
        ]
        write = self._server.write_attribute_value
        for nid, value, vtype in values:
            if nid in self._faults or self._published.get(nid) == value:
                continue
            self._published[nid] = value
            self._types[nid] = vtype
            dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=now, ServerTimestamp=now)
            await write(_nid(nid), dv)

    async def inject_status(self, node_id: str, status: int) -> None:
        """Give ``node_id`` a bad or uncertain status until ``clear_status`` (a failed sensor)."""
        if self._server is None:
            raise RuntimeError("server not started")
        code = _status(status)
        self._faults[node_id] = code
        now = _now()
        value = None
        if not code.is_bad() and node_id in self._published:
            value = ua.Variant(self._published[node_id], self._types[node_id])
        dv = ua.DataValue(value, StatusCode=code, SourceTimestamp=now, ServerTimestamp=now)
        await self._server.write_attribute_value(_nid(node_id), dv)

    async def clear_status(self, node_id: str) -> None:
        self._faults.pop(node_id, None)
        self._published.pop(node_id, None)
        await self._publish()

    async def _capture(
        self, parent: ua.NodeId, exposure: ua.Variant
    ) -> list[ua.Variant] | ua.StatusCode:
        if exposure.VariantType not in (_VT.Double, _VT.Float):
            return _status(StatusCodes.BadTypeMismatch)
        exposure_ms = float(exposure.Value)
        if not 0.0 < exposure_ms <= 10000.0:
            return _status(StatusCodes.BadOutOfRange)
        s = self.state
        focus_error = s.focus - self.best_focus
        png = render_frame(s.stage_x, s.stage_y, focus_error, s.illumination, exposure_ms)
        s.capture_count += 1
        settings = {
            "camera": "MIC1.Camera",
            "exposure_ms": exposure_ms,
            "stage_x_um": s.stage_x,
            "stage_y_um": s.stage_y,
            "focus_um": s.focus,
            "illumination_pct": s.illumination,
            "objective": s.objective,
            "time": _now().isoformat(),
        }
        width, height = IMAGE_SIZE
        if self._server is not None:
            await self._publish()
        return [
            ua.Variant(png, _VT.ByteString),
            ua.Variant(width, _VT.UInt32),
            ua.Variant(height, _VT.UInt32),
            ua.Variant(json.dumps(settings, sort_keys=True), _VT.String),
        ]

    async def _run(self, tick: float) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            await self.step(now - last)
            last = now


def _builtin_type(dtype: object) -> ua.VariantType | None:
    """The Variant type of a built-in DataType node id (ns=0, 1..25), else None."""
    if isinstance(dtype, ua.NodeId) and dtype.NamespaceIndex == 0:
        ident = dtype.Identifier
        if isinstance(ident, int) and 1 <= ident <= 25:
            return _VT(ident)
    return None


def _approach(value: float, target: float, max_delta: float) -> float:
    if abs(target - value) <= max_delta:
        return target
    return value + math.copysign(max_delta, target - value)
