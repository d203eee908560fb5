"""The wire form of the Terminal API's values: every api_types dataclass survives JSON."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hmi.core import api_types
from hmi.core.tags import TagScalar
from hmi.remote.codec import CodecError, decode, encode

API_TYPES = sorted(
    (
        obj
        for obj in vars(api_types).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
    ),
    key=lambda t: t.__name__,
)


JSON_LEAF = st.one_of(st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False))


def values_of(cls: type) -> st.SearchStrategy[Any]:
    """``cls`` built from its annotations; fields typed ``object`` hold what JSON can."""
    hints = typing.get_type_hints(cls)
    loose = {
        name: st.dictionaries(st.text(), JSON_LEAF, max_size=3)
        for name, hint in hints.items()
        if "object" in str(hint)
    }
    return st.builds(cls, **loose)


def wire(value: Any) -> str:
    return json.dumps(encode(value), sort_keys=True)


@pytest.mark.parametrize("cls", API_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_api_type_round_trips(cls: type, data: st.DataObject) -> None:
    value = data.draw(values_of(cls))
    sent = wire(value)
    back = decode(cls, json.loads(sent), cls.__name__)
    assert type(back) is cls
    assert wire(back) == sent


def test_a_tag_value_keeps_its_kind() -> None:
    for value in (True, 0, 1, 2.5, 3.0, "on"):
        back = decode(TagScalar, json.loads(json.dumps(encode(value))))
        assert back == value and type(back) is type(value)


def test_times_keep_their_offset() -> None:
    t = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    reading = api_types.TagReading("BR101.TEMP", 37.0, "GOOD", "°C", t)
    back = decode(api_types.TagReading, json.loads(json.dumps(encode(reading))))
    assert back == reading and back.time.utcoffset() is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tag": "T", "value": 1, "quality": "GOOD", "units": "", "time": 5}, "time: expected str"),
        (
            {"tag": "T", "value": 1, "quality": "GOOD", "units": "", "time": "x", "__class__": 1},
            "unknown field",
        ),
        ({"tag": "T", "value": [1], "quality": "G", "units": "", "time": "x"}, "fits none"),
        ("not an object", "expected dict"),
    ],
)
def test_a_message_that_does_not_fit_is_refused_by_name(data: object, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode(api_types.TagReading, data, "reading")


@settings(max_examples=50, deadline=None)
@given(reading=values_of(api_types.TagReading))
def test_the_terminals_fast_path_reads_exactly_what_the_codec_reads(
    reading: api_types.TagReading,
) -> None:
    from hmi.remote.terminal_api import Mirror

    sent = json.loads(wire([reading]))
    mirror = Mirror()
    mirror.apply_tags(sent)
    (got,) = mirror.tags.values()
    assert wire(got) == wire(decode(api_types.TagReading, sent[0]))


def test_a_malformed_reading_is_refused_by_name() -> None:
    from hmi.remote.terminal_api import Mirror

    bad = {"tag": "T", "value": [1], "quality": "GOOD", "units": "", "time": "x", "reason": ""}
    with pytest.raises(CodecError, match="tags"):
        Mirror().apply_tags([bad])
