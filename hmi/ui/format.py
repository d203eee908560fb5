"""How values, qualities, times and priorities read on screen.

Kept apart from the widgets so every screen words the same thing the same
way, and so the wording can be tested without a terminal. Nothing here relies
on colour: a monochrome terminal shows the same words.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from hmi.core.tags import TagScalar

QUALITY_WORDS = {"GOOD": "ok", "UNCERTAIN": "UNCERTAIN", "BAD": "BAD"}


def value_text(value: TagScalar | None, dtype: str = "") -> str:
    """A value as an operator reads it: bools as ON/OFF, floats to three decimals."""
    if value is None:
        return "----"
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def quality_text(quality: str, reason: str = "") -> str:
    """``ok`` for good values; anything else in capitals, with the core's reason."""
    word = QUALITY_WORDS.get(quality, quality)
    if quality == "GOOD" or not reason:
        return word
    return f"{word}: {reason}"


def local_time(ts: datetime, tz: tzinfo | None = None) -> str:
    """Local time with its UTC offset (the records keep UTC)."""
    return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %z")


def countdown(seconds: float) -> str:
    whole = max(0, int(seconds + 0.999))
    return f"{whole // 60}:{whole % 60:02d}"


def limits_text(low: float | None, high: float | None, units: str) -> str:
    if low is None and high is None:
        return "no limits configured"
    lo = "-∞" if low is None else value_text(float(low))
    hi = "+∞" if high is None else value_text(float(high))
    return f"{lo} … {hi} {units}".rstrip()


def parse_value(text: str, dtype: str) -> TagScalar:
    """The operator's text as the tag's type; ``ValueError`` with words a person can act on.

    Only the type is checked here; whether the value is allowed is the core's decision.
    """
    text = text.strip()
    if dtype == "bool":
        low = text.lower()
        if low in ("on", "1", "true", "start", "open"):
            return True
        if low in ("off", "0", "false", "stop", "close"):
            return False
        raise ValueError("Enter ON or OFF.")
    if dtype == "string":
        return text
    if not text:
        raise ValueError("Enter a new value.")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number.") from None
    if dtype.startswith(("int", "uint")):
        if not number.is_integer():
            raise ValueError("Enter a whole number.")
        return int(number)
    return number
