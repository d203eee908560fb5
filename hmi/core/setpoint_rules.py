"""What a tag accepts: type, range and rate of change, judged before anything is signed.

Kept apart from the command service so the same rules can be shown by a
screen (limits, units) and tested without a plant. Each refusal says, in
the operator's words, what the tag takes instead.
"""

from __future__ import annotations

import math

from hmi.core.errors import HmiError
from hmi.core.tag_table import TagDef
from hmi.core.tags import TagScalar


def check_value(kind: str, d: TagDef, value: TagScalar) -> TagScalar:
    """``value`` as the device will get it (float or int by the tag's type), or HmiError."""
    if not d.writable:
        raise HmiError(f"{d.name} is read-only; it cannot be written from here.")
    if kind == "operate_equipment":
        if d.dtype != "bool":
            raise HmiError(f"{d.name} is not equipment that starts and stops; set its value.")
        if not isinstance(value, bool):
            raise HmiError(f"{d.name} takes start (true) or stop (false).")
        return value
    if d.dtype == "bool":
        raise HmiError(f"{d.name} starts and stops equipment; use start or stop.")
    if d.dtype == "string":
        if not isinstance(value, str):
            raise HmiError(f"{d.name} takes text.")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HmiError(f"{d.name} takes a number, not {value!r}.")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise HmiError(f"{d.name} takes a finite number.")
    if d.dtype not in ("float32", "float64") and number != int(number):
        raise HmiError(f"{d.name} takes a whole number, not {value}.")
    units = f" {d.units}" if d.units else ""
    if (d.low is not None and number < d.low) or (d.high is not None and number > d.high):
        raise HmiError(
            f"{d.name}: {value}{units} is outside the allowed range "
            f"{d.low if d.low is not None else '-∞'} to "
            f"{d.high if d.high is not None else '∞'}{units}."
        )
    return number if d.dtype in ("float32", "float64") else int(number)


def check_rate(d: TagDef, number: float, current: TagScalar | None, elapsed_s: float) -> None:
    """At most ``rate_of_change`` per second over ``elapsed_s`` since the last write."""
    assert d.rate_of_change is not None
    units = f" {d.units}" if d.units else ""
    if current is None or isinstance(current, bool | str):
        raise HmiError(
            f"{d.name} has no current value to compare with; a rate-limited setpoint can be "
            "changed only while its value is known."
        )
    allowed = d.rate_of_change * elapsed_s
    step = abs(number - float(current))
    if step > allowed + 1e-9:
        raise HmiError(
            f"{d.name}: a change of {step:g}{units} from {current:g}{units} is too fast; "
            f"at most {d.rate_of_change:g}{units} per second is allowed, {allowed:g}{units} "
            "now. Make the change in smaller steps."
        )
