"""What a remote terminal shows without asking, built for its session on the server.

A screen reads tag values, alarms, approvals and its runs many times a second;
over a link those reads are answered from a copy the terminal keeps, which
the server keeps current by pushing what changed (``state`` and ``tags``
events). Everything here is the session's own view through the Terminal API,
so a terminal sees exactly what it would see in the runtime's process.

Values are coalesced: each push carries the latest reading of each tag that
changed since the last push, never a backlog. State (alarms, approvals, runs,
session) is sent whole per section when it differs from what was last sent,
so a terminal that was slow gets the latest state, not an old one: an alarm
is never dropped, only its superseded states are.

Values are the same for every session, so the table is read and each changed
reading encoded once per change of the table (``SharedReadings``), not once
per terminal per push: with 20 terminals on 1,000 tags that is the bulk of
the runtime's cost of serving them (bench/bench_terminals.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hmi.core.api import TerminalAPI
from hmi.core.errors import HmiError
from hmi.core.identity import Session
from hmi.remote.codec import encode

Links = Callable[[], dict[str, str]]


def sections(api: TerminalAPI, session: Session, links: Links | None = None) -> dict[str, Any]:
    """Every state section of ``session``'s view, in wire form."""
    status = api.session_status(session)
    out: dict[str, Any] = {
        "session": {
            "seconds_left": status.seconds_left,
            "warning": status.warning,
            "ends_by": status.ends_by,
            "needs_user_id": _or_none(lambda: api.signing_needs_user_id(session)),
        },
        "approvals": encode(_or_empty(lambda: api.pending_approvals(session))),
        "choices": encode(_or_empty(lambda: api.what_may_i_do(session))),
        "links": dict(links()) if links is not None else {},
        "config": api.config.revision if api.config is not None else 0,
    }
    if api.alarms is not None:
        desk = api.alarms
        out["alarms"] = encode(_or_empty(lambda: desk.active(session)))
        out["hidden"] = encode(_or_empty(lambda: desk.hidden(session)))
        out["banner"] = encode(_or_none(lambda: desk.banner(session)))
    if api.procedures is not None:
        procedures = api.procedures
        out["runs"] = encode(_or_empty(lambda: procedures.runs(session, include_finished=True)))
    return out


def _or_empty(read: Callable[[], list[Any]]) -> list[Any]:
    try:
        return read()
    except HmiError:  # e.g. a password change is due: nothing to show yet
        return []


def _or_none(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except HmiError:
        return None


Key = tuple[Any, ...]


class SharedReadings:
    """Every tag's reading and its wire form, read once per version of the tag table.

    Each session still passes the same check ``read_tags`` makes (a session
    that has ended or must change its password gets the same refusal); only
    the reading and encoding of the values, which do not depend on the
    session, are shared.
    """

    def __init__(self, api: TerminalAPI) -> None:
        self.api = api
        self._version: int | None = None
        self._entries: list[tuple[str, Key, Any]] = []
        self._encoded: dict[str, tuple[Key, Any]] = {}
        self.reads = 0
        self.encoded = 0

    def current(self, session: Session) -> list[tuple[str, Key, Any]]:
        """(tag, what identifies its reading, its wire form) for every tag, in name order."""
        version = self.api.table.version
        if version == self._version:
            self.api.identity.require_session(session)
            return self._entries
        readings = self.api.read_tags(session)
        self.reads += 1
        entries = []
        for reading in readings:
            key = (reading.value, reading.quality, reading.time, reading.reason)
            cached = self._encoded.get(reading.tag)
            if cached is None or cached[0] != (*key, reading.units):
                cached = ((*key, reading.units), encode(reading))
                self._encoded[reading.tag] = cached
                self.encoded += 1
            entries.append((reading.tag, key, cached[1]))
        self._entries, self._version = entries, version
        return entries


@dataclass
class PushState:
    """What was last sent to one terminal, to send only what changed."""

    sent_sections: dict[str, str] = field(default_factory=dict)
    sent_tags: dict[str, Key] = field(default_factory=dict)
    dropped_value_pushes: int = 0

    def changed_sections(self, now: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in now.items():
            text = json.dumps(value, sort_keys=True, default=str)
            if self.sent_sections.get(name) != text:
                out[name] = value
                self.sent_sections[name] = text
        return out

    def changed_tags(self, readings: SharedReadings, session: Session) -> list[Any]:
        """The wire form of each reading not yet sent to this terminal."""
        out = []
        sent = self.sent_tags
        for tag, key, wire in readings.current(session):
            if sent.get(tag) != key:
                sent[tag] = key
                out.append(wire)
        return out
