"""WriteAttribution: a change is the user's when their command announced it, the device's
otherwise, and unattributed when a writable tag changes behind our back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hmi.core.attribution import WriteAttribution
from hmi.core.clock import FakeClock
from hmi.core.tags import Quality, TagChange, TagScalar

SP = "BR101.TEMP_SP"  # writable setpoint
PV = "BR101.TEMP"  # read-only measurement
DEVICE = "device:plc1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def flagged() -> list[TagChange]:
    return []


@pytest.fixture
def attribution(clock: FakeClock, flagged: list[TagChange]) -> WriteAttribution:
    return WriteAttribution(
        [SP, "PUMP_RUN", "RECIPE"],
        clock=clock,
        tolerance={SP: 0.05},
        on_unattributed=flagged.append,
    )


def change(
    tag: str, value: TagScalar | None, quality: Quality = Quality.GOOD, at: datetime | None = None
) -> TagChange:
    at = at or datetime(2026, 1, 5, 8, tzinfo=UTC)
    return TagChange(tag, value, quality, at, at + timedelta(milliseconds=3), DEVICE)


def test_expected_value_is_the_users_and_consumed_once(
    attribution: WriteAttribution, flagged: list[TagChange]
) -> None:
    attribution.attribute(change(SP, 37.0))  # first value: the baseline
    attribution.expect(SP, 37.5, "op1", within_s=5)

    first = attribution.attribute(change(SP, 37.5))
    assert (first.actor, first.unattributed) == ("op1", False)
    assert attribution.pending(SP) == []

    # the same value again (e.g. set back at the panel, then again) is no longer explained
    attribution.attribute(change(SP, 36.0))
    again = attribution.attribute(change(SP, 37.5))
    assert (again.actor, again.unattributed) == (DEVICE, True)
    assert [c.value for c in flagged] == [36.0, 37.5]


def test_two_commands_explain_two_changes_in_order(attribution: WriteAttribution) -> None:
    attribution.attribute(change(SP, 30.0))
    attribution.expect(SP, 31.0, "op1", within_s=5)
    attribution.expect(SP, 32.0, "op2", within_s=5)

    assert attribution.attribute(change(SP, 32.0)).actor == "op2"
    assert attribution.attribute(change(SP, 31.0)).actor == "op1"


@pytest.mark.parametrize(
    ("read_back", "matches"),
    [
        pytest.param(37.25, True, id="exact"),
        pytest.param(37.2, True, id="within-the-tag-tolerance"),
        pytest.param(37.3, True, id="within-the-tag-tolerance-above"),
        pytest.param(37.35, False, id="beyond-the-tag-tolerance"),
        pytest.param(36.0, False, id="another-value"),
    ],
)
def test_tolerance_of_the_tag(
    attribution: WriteAttribution, read_back: float, matches: bool
) -> None:
    attribution.attribute(change(SP, 20.0))
    attribution.expect(SP, 37.25, "op1", within_s=5)

    result = attribution.attribute(change(SP, read_back))

    assert (result.actor == "op1") is matches
    assert result.unattributed is not matches
    assert (attribution.pending(SP) == []) is matches


def test_relative_tolerance_covers_float32_rounding(clock: FakeClock) -> None:
    attribution = WriteAttribution(["FLOW_SP"], clock=clock)  # no per-tag tolerance
    attribution.attribute(change("FLOW_SP", 0.0))
    attribution.expect("FLOW_SP", 0.1, "op1", within_s=5)

    as_float32 = 0.10000000149011612  # what a REAL register gives back for 0.1
    assert attribution.attribute(change("FLOW_SP", as_float32)).actor == "op1"


def test_expectation_expires_at_its_deadline(
    attribution: WriteAttribution, clock: FakeClock, flagged: list[TagChange]
) -> None:
    attribution.attribute(change(SP, 20.0))
    attribution.expect(SP, 25.0, "op1", within_s=2)

    clock.advance(2.0)  # the deadline itself still counts
    assert attribution.pending(SP) != []
    clock.advance(0.001)
    assert attribution.pending(SP) == []

    late = attribution.attribute(change(SP, 25.0))
    assert (late.actor, late.unattributed) == (DEVICE, True)
    assert flagged == [late]


def test_value_arriving_before_the_deadline_is_attributed(
    attribution: WriteAttribution, clock: FakeClock
) -> None:
    attribution.attribute(change(SP, 20.0))
    attribution.expect(SP, 25.0, "op1", within_s=2)
    clock.advance(1.9)

    assert attribution.attribute(change(SP, 25.0)).actor == "op1"


def test_read_only_tags_are_never_unattributed(
    attribution: WriteAttribution, flagged: list[TagChange]
) -> None:
    for value in (20.0, 21.5, 23.0):
        result = attribution.attribute(change(PV, value))
        assert (result.actor, result.unattributed) == (DEVICE, False)
    assert flagged == []


def test_first_value_after_start_up_is_not_a_change(
    attribution: WriteAttribution, flagged: list[TagChange]
) -> None:
    first = attribution.attribute(change(SP, 55.0))

    assert (first.actor, first.unattributed) == (DEVICE, False)
    assert flagged == []


def test_first_value_after_bad_quality_is_not_a_change(
    attribution: WriteAttribution, flagged: list[TagChange]
) -> None:
    attribution.attribute(change(SP, 20.0))
    bad = attribution.attribute(change(SP, None, Quality.BAD))
    assert not bad.unattributed

    back = attribution.attribute(change(SP, 42.0))  # link back with a different value

    assert (back.actor, back.unattributed) == (DEVICE, False)
    assert flagged == []
    assert attribution.attribute(change(SP, 43.0)).unattributed  # but the next one is


def test_same_value_again_is_not_a_change(
    attribution: WriteAttribution, flagged: list[TagChange]
) -> None:
    attribution.attribute(change(SP, 20.0))

    again = attribution.attribute(change(SP, 20.0, Quality.UNCERTAIN))  # quality-only change
    within = attribution.attribute(change(SP, 20.04))  # within the tag's tolerance

    assert not again.unattributed and not within.unattributed
    assert flagged == []


@pytest.mark.parametrize(
    ("tag", "before", "after"),
    [
        pytest.param("PUMP_RUN", False, True, id="bool"),
        pytest.param("RECIPE", "A-12", "B-7", id="text"),
        pytest.param(SP, 3, 4, id="int"),
    ],
)
def test_unattributed_change_of_each_kind_of_value(
    attribution: WriteAttribution,
    flagged: list[TagChange],
    tag: str,
    before: TagScalar,
    after: TagScalar,
) -> None:
    attribution.attribute(change(tag, before))

    result = attribution.attribute(change(tag, after))

    assert result.unattributed and result.actor == DEVICE
    assert result.value == after and result.tag == tag
    assert flagged == [result]


def test_expected_bool_write(attribution: WriteAttribution) -> None:
    attribution.attribute(change("PUMP_RUN", False))
    attribution.expect("PUMP_RUN", True, "op1", within_s=5)

    assert attribution.attribute(change("PUMP_RUN", 1)).actor == DEVICE  # 1 is not True
    attribution.attribute(change("PUMP_RUN", False))
    assert attribution.attribute(change("PUMP_RUN", True)).actor == "op1"


def test_failing_callback_does_not_lose_the_flag(clock: FakeClock) -> None:
    def explode(_: TagChange) -> None:
        raise RuntimeError("event bus down")

    attribution = WriteAttribution([SP], clock=clock, on_unattributed=explode)
    attribution.attribute(change(SP, 1.0))

    assert attribution.attribute(change(SP, 2.0)).unattributed


def test_nan_to_nan_is_not_a_change(attribution: WriteAttribution) -> None:
    attribution.attribute(change(SP, float("nan")))

    assert not attribution.attribute(change(SP, float("nan"))).unattributed


def test_expect_needs_a_positive_window(attribution: WriteAttribution) -> None:
    with pytest.raises(ValueError, match="positive"):
        attribution.expect(SP, 1.0, "op1", within_s=0)
