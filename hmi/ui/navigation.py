"""The pages a logged-in user can go to, and the key for each.

This list is the navigation: the app makes one footer binding per page, and
``CustosApp.open_page(name)`` shows it. To add a screen, derive it from
``PageScreen`` (screens/base.py), give it a ``page`` name, and add a ``Page``
here; nothing else in the app changes. The first page is where a login lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hmi.ui.screens.alarms import AlarmsScreen
from hmi.ui.screens.approvals import ApprovalsScreen
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.camera import CameraScreen
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.procedures import ProceduresScreen


@dataclass(frozen=True)
class Page:
    name: str
    key: str
    """Textual key name of the binding (``f2``)."""
    label: str
    """What the footer shows."""
    make: Callable[[], PageScreen]
    """A new screen each time: a page holds no state of a previous visit or user."""


PAGES: tuple[Page, ...] = (
    Page("overview", "f2", "Overview", OverviewScreen),
    Page("alarms", "f3", "Alarms", AlarmsScreen),
    Page("procedures", "f4", "Procedures", ProceduresScreen),
    Page("approvals", "f5", "Approvals", ApprovalsScreen),
    Page("camera", "f6", "Camera", CameraScreen),
)


def page(name: str) -> Page:
    for p in PAGES:
        if p.name == name:
            return p
    raise KeyError(name)
