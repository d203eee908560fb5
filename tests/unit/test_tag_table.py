"""TagTable: which samples are logged changes, with which actor (SUP-4, SUP-5)."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

import pytest

from drivers.base import Quality as DQ
from drivers.base import Sample
from hmi.core.clock import FakeClock
from hmi.core.tag_table import WAITING, TagDef, TagTable
from hmi.core.tags import Quality, TagChange

pytestmark = pytest.mark.timeout(10)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
DEFS = [
    TagDef("TEMP", "PLC1", "ir:0", "float32", units="°C", deadband=0.5),
    TagDef("SP", "PLC1", "hr:0", "float32", writable=True, low=4, high=45),
    TagDef("PUMP", "PLC1", "coil:0", "bool", writable=True),
    TagDef("BATCH", "PLC1", "hr:12", "string"),
    TagDef("FOCUS", "MIC1", "ns=2;s=MIC1.Focus", "float64", deadband=1.0),
]


@pytest.fixture
def table() -> TagTable:
    return TagTable(DEFS, clock=FakeClock(T0))


@pytest.fixture
def changes(table: TagTable) -> list[TagChange]:
    got: list[TagChange] = []
    table.subscribe(got.append)
    return got


def good(point: str, value: object) -> Sample:
    return Sample(point, value, DQ.GOOD, "", None, T0)  # type: ignore[arg-type]


def logged(changes: list[TagChange], tag: str) -> list[object]:
    return [c.value for c in changes if c.tag == tag]


def test_tags_wait_for_their_first_value(table: TagTable) -> None:
    first = table.get("TEMP")
    assert first.quality is Quality.BAD and first.reason == WAITING and first.value is None
    assert set(table.devices()) == {"PLC1", "MIC1"}


def test_deadband_compares_with_the_last_logged_value(table, changes) -> None:
    for value in (20.0, 20.3, 20.4, 20.6, 20.7, 21.2):
        table.apply("PLC1", [good("TEMP", value)])
    assert logged(changes, "TEMP") == [20.0, 20.6, 21.2]
    assert table.get("TEMP").value == 21.2
    assert {c.actor for c in changes} == {"device:PLC1"}


def test_without_a_deadband_every_numeric_change_is_logged(table, changes) -> None:
    for value in (37.0, 37.0, 37.000001, 37.000001, 30.0):
        table.apply("PLC1", [good("SP", value)])
    assert logged(changes, "SP") == [37.0, 37.000001, 30.0]


def test_bool_and_string_changes_and_quality_changes_always_log(table, changes) -> None:
    table.apply("PLC1", [good("PUMP", False), good("BATCH", "")])
    table.apply("PLC1", [good("PUMP", False), good("BATCH", "")])
    table.apply("PLC1", [good("PUMP", True), good("BATCH", "B-0042")])
    table.apply("PLC1", [good("TEMP", 20.0)])
    table.apply("PLC1", [Sample("TEMP", 20.1, DQ.UNCERTAIN, "SensorCal", None, T0)])
    table.apply("PLC1", [Sample("TEMP", None, DQ.BAD, "Modbus exception 2", None, T0)])
    table.apply("PLC1", [Sample("TEMP", None, DQ.BAD, "Modbus exception 4", None, T0)])
    assert logged(changes, "PUMP") == [False, True]
    assert logged(changes, "BATCH") == ["", "B-0042"]
    temp = [(c.value, c.quality, c.reason) for c in changes if c.tag == "TEMP"]
    assert temp == [
        (20.0, Quality.GOOD, ""),
        (20.1, Quality.UNCERTAIN, "SensorCal"),
        (None, Quality.BAD, "Modbus exception 2"),
    ]
    assert table.get("TEMP").reason == "Modbus exception 4"


def test_nan_logs_once_and_timestamps_come_from_the_sample(table, changes) -> None:
    src = datetime(2026, 1, 5, 7, 59, 59, tzinfo=UTC)
    table.apply("MIC1", [Sample("FOCUS", 1000.0, DQ.GOOD, "", src, T0)])
    table.apply("MIC1", [Sample("FOCUS", math.nan, DQ.GOOD, "", src, T0)])
    table.apply("MIC1", [Sample("FOCUS", math.nan, DQ.GOOD, "", src, T0)])
    assert len(changes) == 2 and math.isnan(changes[1].value)  # type: ignore[arg-type]
    assert changes[0].source_time == src and changes[0].server_time == T0


def test_samples_of_another_device_or_unknown_points_are_ignored(table, changes) -> None:
    assert table.apply("MIC1", [good("TEMP", 20.0), good("NOPE", 1)]) == 0
    assert changes == [] and table.get("TEMP").reason == WAITING


def test_a_dead_link_turns_every_tag_of_the_device_bad_once(table, changes) -> None:
    table.apply("PLC1", [good("TEMP", 20.0), good("SP", 37.0)])
    changes.clear()
    assert table.set_device_quality("PLC1", Quality.BAD, "link down: refused") == 4
    assert table.set_device_quality("PLC1", Quality.BAD, "link down: timed out") == 0
    assert {c.tag for c in changes} == {"TEMP", "SP", "PUMP", "BATCH"}
    assert all(c.quality is Quality.BAD and c.reason == "link down: refused" for c in changes)
    assert table.get("FOCUS").reason == WAITING
    assert table.get("TEMP").reason == "link down: timed out"


def test_the_attribution_hook_rewrites_the_actor(table, changes) -> None:
    def attribute(change: TagChange) -> TagChange:
        if change.tag == "SP" and change.value == 30.0:
            return dataclasses.replace(change, actor="op1")
        if change.tag == "SP":
            return dataclasses.replace(change, unattributed=True)
        return change

    table.attribute = attribute
    table.apply("PLC1", [good("SP", 30.0), good("TEMP", 20.0)])
    table.apply("PLC1", [good("SP", 31.0)])
    assert [(c.tag, c.actor, c.unattributed) for c in changes] == [
        ("SP", "op1", False),
        ("TEMP", "device:PLC1", False),
        ("SP", "device:PLC1", True),
    ]


def test_failing_hook_or_subscriber_never_loses_the_change(table, changes) -> None:
    def broken(change: TagChange) -> TagChange:
        raise RuntimeError("boom")

    table.attribute = broken
    table.subscribe(lambda change: 1 / 0)  # type: ignore[func-returns-value]
    later: list[TagChange] = []
    table.subscribe(later.append)
    table.apply("PLC1", [good("SP", 30.0)])
    assert [c.actor for c in changes] == ["device:PLC1"] and len(later) == 1


def test_unsubscribe_and_duplicate_definitions() -> None:
    table = TagTable(DEFS[:1])
    got: list[TagChange] = []
    stop = table.subscribe(got.append)
    stop()
    table.apply("PLC1", [good("TEMP", 1.0)])
    assert got == []
    with pytest.raises(ValueError, match="defined twice"):
        TagTable([DEFS[0], DEFS[0]])


def test_the_version_goes_up_whenever_a_value_is_replaced(table: TagTable) -> None:
    start = table.version
    table.apply("PLC1", [good("TEMP", 20.0)])
    after_apply = table.version
    assert after_apply > start
    table.apply("PLC1", [good("TEMP", 20.0)])  # same value, new sample: replaced all the same
    assert table.version > after_apply
    before_quality = table.version
    table.set_device_quality("MIC1", Quality.BAD, "link down")
    assert table.version > before_quality
    unchanged = table.version
    table.get("TEMP"), table.snapshot()
    assert table.version == unchanged


def test_redefine_replaces_what_no_driver_uses_and_refuses_the_rest(table: TagTable) -> None:
    wider = [dataclasses.replace(d, high=38.0) if d.name == "SP" else d for d in DEFS]
    assert table.redefine(wider) == ["SP"]
    assert table.definition("SP").high == 38.0
    moved = [dataclasses.replace(d, address="hr:40") if d.name == "SP" else d for d in wider]
    with pytest.raises(ValueError, match="'SP' changes how it is scanned"):
        table.redefine(moved)
    with pytest.raises(ValueError, match="set of tags differs"):
        table.redefine(wider[1:])
    assert table.definition("SP").address == "hr:0" and len(table.definitions) == len(DEFS)


def test_reconfigure_keeps_values_of_tags_scanned_as_before(table: TagTable) -> None:
    table.apply("PLC1", [good("TEMP", 37.0), good("SP", 30.0)])
    new = [
        dataclasses.replace(d, address="hr:40") if d.name == "SP" else d
        for d in DEFS
        if d.name != "BATCH"
    ]
    new.append(TagDef("LEVEL", "PLC2", "ir:1", "float32"))
    added, removed, moved = table.reconfigure(new)
    assert (added, removed, moved) == (["LEVEL"], ["BATCH"], ["SP"])
    assert table.get("TEMP").value == 37.0
    assert table.get("SP").reason == WAITING and table.get("LEVEL").reason == WAITING
    assert table.devices() == {
        "PLC1": ("TEMP", "SP", "PUMP"),
        "PLC2": ("LEVEL",),
        "MIC1": ("FOCUS",),
    }
    with pytest.raises(KeyError):
        table.get("BATCH")


def test_a_new_definition_is_a_new_version_for_readers(table: TagTable) -> None:
    start = table.version
    same = list(DEFS)
    assert table.redefine(same) == [] and table.version == start
    wider = [dataclasses.replace(d, units="degC") if d.name == "SP" else d for d in DEFS]
    table.redefine(wider)
    assert table.version == start + 1
    table.reconfigure(wider)
    assert table.version == start + 2
