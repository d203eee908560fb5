"""Terminal API values to JSON and back, directed by the API's own type annotations.

The Terminal API takes and gives plain frozen dataclasses (``hmi.core.api_types``),
so its annotations are the wire schema: a value is encoded by what it is and
decoded by what the method's signature says it must be. Nothing on the wire
names a Python class, so a message can never make the other side build an
object the API did not declare.

Encoding: dataclass → object of its fields; tuple, list → array; datetime →
ISO 8601 text with its offset; bytes → base64 text; enum → its value; Path →
text. JSON keeps bool, int, float and text apart, which is all a tag value is.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

JSON = Any


class CodecError(ValueError):
    """A message does not fit the type the API declares; it names where."""


def encode(value: Any) -> JSON:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return encode(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, tuple | list | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [encode(v) for v in items]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    raise CodecError(f"{type(value).__name__} cannot be sent to a terminal")


def decode(tp: Any, data: JSON, where: str = "value") -> Any:
    """``data`` as an instance of ``tp`` (a resolved annotation)."""
    if tp is Any or tp is object:
        return data
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return _union(get_args(tp), data, where)
    if origin is Literal:
        if data not in get_args(tp):
            raise CodecError(f"{where}: {data!r} is not one of {get_args(tp)}")
        return data
    if tp is type(None):
        if data is not None:
            raise CodecError(f"{where}: expected null")
        return None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if tp is datetime:
        return datetime.fromisoformat(_typed(str, data, where))
    if tp is bytes:
        return base64.b64decode(_typed(str, data, where), validate=True)
    if tp is Path:
        return Path(_typed(str, data, where))
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise CodecError(f"{where}: expected a number, got {type(data).__name__}")
        return float(data)
    if tp in (bool, int, str):
        return _typed(tp, data, where)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, data, where)
    if origin in (tuple, list, set, frozenset, Sequence):
        return _sequence(tp, origin, data, where)
    if origin in (dict, Mapping):
        key_t, value_t = get_args(tp) or (str, Any)
        items = _typed(dict, data, where)
        return {
            decode(key_t, k, f"{where}.{k}"): decode(value_t, v, f"{where}.{k}")
            for k, v in items.items()
        }
    raise CodecError(f"{where}: no wire form for {tp!r}")


def _typed(tp: type, data: JSON, where: str) -> Any:
    if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
        raise CodecError(f"{where}: expected {tp.__name__}, got {type(data).__name__}")
    return data


def _union(options: tuple[Any, ...], data: JSON, where: str) -> Any:
    if data is None:
        if type(None) in options:
            return None
        raise CodecError(f"{where}: may not be null")
    plain = [t for t in options if t in (bool, int, float, str)]
    if plain and isinstance(data, bool | int | float | str):
        # A tag value (bool | int | float | str): JSON has kept its kind.
        if any(isinstance(data, t) and not (t is int and isinstance(data, bool)) for t in plain):
            return data
        if float in plain and isinstance(data, int) and not isinstance(data, bool):
            return float(data)
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            return decode(option, data, where)
        except (CodecError, ValueError, TypeError) as exc:
            problems.append(str(exc))
    raise CodecError(f"{where}: fits none of its types ({'; '.join(problems)})")


def _dataclass(tp: type, data: JSON, where: str) -> Any:
    fields = _typed(dict, data, where)
    hints = _hints(tp)
    kwargs = {}
    known = {f.name for f in dataclasses.fields(tp) if f.init}
    unknown = set(fields) - known
    if unknown:
        raise CodecError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for f in dataclasses.fields(tp):
        if not f.init or f.name not in fields:
            continue
        kwargs[f.name] = decode(hints[f.name], fields[f.name], f"{where}.{f.name}")
    try:
        return tp(**kwargs)
    except TypeError as exc:
        raise CodecError(f"{where}: {exc}") from None


def _sequence(tp: Any, origin: Any, data: JSON, where: str) -> Any:
    items = _typed(list, data, where)
    args = get_args(tp)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise CodecError(f"{where}: expected {len(args)} items, got {len(items)}")
        return tuple(
            decode(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(args, items, strict=True))
        )
    item_t = args[0] if args else Any
    values = [decode(item_t, v, f"{where}[{i}]") for i, v in enumerate(items)]
    if origin is tuple:
        return tuple(values)
    if origin in (set, frozenset):
        return origin(values)
    return values


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(tp: type) -> dict[str, Any]:
    if tp not in _HINTS:
        _HINTS[tp] = typing.get_type_hints(tp)
    return _HINTS[tp]
