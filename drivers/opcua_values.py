"""OPC UA values: Variants of the node's own type, qualities from status codes, link errors."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from drivers.base import (
    PointError,
    Quality,
    Sample,
    Value,
    utc_now,
)

_VT = ua.VariantType


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
