"""Where a problem's key path is in a TOML text, so the editor can put the cursor on it.

The core reports problems as key paths (``tag[0] (BR101.FEED_PUMP).type``,
``commands.approval_expiry_s``, ``(TOML syntax)`` with the parser's line);
this finds the line a person would look at. It is a reading aid, not a TOML
parser: when a key cannot be found, the nearest enclosing table is used, and
failing that the first line.
"""

from __future__ import annotations

import re

_ENTRY = re.compile(r"^(?P<name>[A-Za-z_][\w\-]*)\[(?P<index>\d+)\](?: \([^)]*\))?$")
_AT_LINE = re.compile(r"at line (\d+)")
_HEADER = re.compile(r"^\s*\[")


def _segments(key: str) -> list[str]:
    """Split at dots outside parentheses: ``tag[0] (BR101.X).type`` → two segments."""
    out, depth, current = [], 0, ""
    for ch in key:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    return [*out, current] if current else out


def _find(lines: list[str], pattern: re.Pattern[str], start: int, stop: int) -> int | None:
    for i in range(start, stop):
        if pattern.match(lines[i]):
            return i
    return None


def _section_end(lines: list[str], start: int) -> int:
    found = _find(lines, _HEADER, start + 1, len(lines))
    return len(lines) if found is None else found


def key_line(text: str, key: str, message: str = "") -> int:
    """The 0-based line of ``key`` in ``text`` (0 when it cannot be told)."""
    lines = text.splitlines()
    at = _AT_LINE.search(message)
    if at:
        return max(int(at.group(1)) - 1, 0)
    start, stop, line = 0, len(lines), 0
    segments = _segments(key)
    for n, segment in enumerate(segments):
        segment = segment.strip()
        entry = _ENTRY.match(segment)
        if entry:
            found = _nth_entry(lines, entry.group("name"), int(entry.group("index")), start, stop)
            if found is None:
                return line
            start, line, stop = found, found, _section_end(lines, found)
            continue
        name = re.escape(segment)
        if n < len(segments) - 1:
            table = _find(lines, re.compile(rf"^\s*\[\s*{name}\s*\]"), start, stop)
            if table is not None:
                start, line, stop = table, table, _section_end(lines, table)
                continue
        found = _find(lines, re.compile(rf'^\s*"?{name}"?\s*='), start, stop)
        if found is None:
            return line
        line = found
    return line


def _nth_entry(lines: list[str], name: str, index: int, start: int, stop: int) -> int | None:
    """The line of the ``index``-th ``[[name]]`` header (counted from 0)."""
    header = re.compile(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]")
    seen = -1
    for i in range(start, stop):
        if header.match(lines[i]):
            seen += 1
            if seen == index:
                return i
    return None
