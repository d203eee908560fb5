"""Terminals (SUP-9, 21 CFR 11.10(h)): which places may command which parts of the plant.

A terminal is a named place (a panel PC, the QA desk, an engineer's laptop
over SSH). ``plant.toml`` lists each with the areas and actions allowed from
it and the source addresses it may be reached from. A session belongs to the
terminal it started on; a command must come from that same terminal and
source, from an address the terminal allows, for an area and an action the
terminal allows. Anything else is refused, so a valid password typed at the
wrong place still cannot move a valve.

Patterns use shell wildcards (``local:*``, ``ssh:10.0.0.*``); ``"*"`` in
``areas`` or ``actions`` means every one.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hmi.core.errors import HmiError
from hmi.core.records import Origin

_ID = r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}"


class TerminalRefused(HmiError):
    title = "Not allowed from this terminal"


class TerminalConfig(BaseModel):
    """One ``[[terminal]]`` of plant.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=f"^{_ID}$", description="the terminal ID sessions record")
    description: str = ""
    areas: list[str] = Field(default_factory=list, description='tag areas; "*" for every area')
    actions: list[str] = Field(default_factory=list, description='permissions; "*" for all')
    sources: list[str] = Field(
        default_factory=list, description="allowed source addresses, e.g. local:* or ssh:10.0.0.*"
    )

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, actions: list[str]) -> list[str]:
        from hmi.core.config import ACTIONS

        for action in actions:
            if action != "*" and action not in ACTIONS:
                raise ValueError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        return actions

    @field_validator("sources")
    @classmethod
    def _patterns(cls, sources: list[str]) -> list[str]:
        for pattern in sources:
            if not re.fullmatch(r"[a-z]+:\S+", pattern):
                raise ValueError(
                    f"source {pattern!r} must be kind:address, e.g. local:* or ssh:10.0.0.*"
                )
        return sources

    def allows_source(self, source: str) -> bool:
        """The address part of ``ssh:10.0.0.5 (bob)`` is what the patterns describe."""
        address = source.split(" ", 1)[0]
        return any(fnmatchcase(address, p) or fnmatchcase(source, p) for p in self.sources)

    def allows_area(self, area: str) -> bool:
        return "*" in self.areas or area in self.areas

    def allows_action(self, action: str) -> bool:
        return "*" in self.actions or action in self.actions


def check_unique(terminals: list[TerminalConfig]) -> list[TerminalConfig]:
    seen: set[str] = set()
    for terminal in terminals:
        if terminal.id in seen:
            raise ValueError(f"terminal {terminal.id!r} is listed twice")
        seen.add(terminal.id)
    return terminals


def check_terminal(
    terminals: list[TerminalConfig],
    session_origin: Origin,
    origin: Origin,
    action: str,
    area: str | None,
) -> TerminalConfig:
    """The terminal if ``action`` on ``area`` may be asked from ``origin``; else TerminalRefused.

    ``session_origin`` is where the session started: a command arriving from
    anywhere else is refused, so a session cannot be carried to another place.
    """
    if origin != session_origin:
        raise TerminalRefused(
            f"This session was started at terminal {session_origin.terminal_id} "
            f"({session_origin.source}); the command came from terminal {origin.terminal_id} "
            f"({origin.source}). Log in at the terminal you are using."
        )
    terminal = next((t for t in terminals if t.id == origin.terminal_id), None)
    if terminal is None:
        raise TerminalRefused(
            f"Terminal {origin.terminal_id} is not a configured terminal, so no command may be "
            "given from it. Ask an engineer to add it to plant.toml."
        )
    if not terminal.allows_source(origin.source):
        raise TerminalRefused(
            f"Terminal {terminal.id} may not be used from {origin.source}; it allows "
            f"{', '.join(terminal.sources) or 'no source addresses'}."
        )
    if not terminal.allows_action(action):
        raise TerminalRefused(
            f"'{action.replace('_', ' ')}' is not allowed from terminal {terminal.id}."
        )
    if area is not None and not terminal.allows_area(area):
        raise TerminalRefused(
            f"Area '{area or '(none)'}' cannot be operated from terminal {terminal.id}; it "
            f"allows {', '.join(terminal.areas) or 'no areas'}."
        )
    return terminal
