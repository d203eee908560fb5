"""The pages a logged-in user can go to, and the key for each.

This list is the navigation: the app makes one footer binding per page, and
``CustosApp.open_page(name)`` shows it. To add a screen, derive it from
``PageScreen`` (screens/base.py), give it a ``page`` name, and add a ``Page``
here; nothing else in the app changes. The first page is where a login lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hmi.ui.screens.admin import AdminScreen
from hmi.ui.screens.alarm_history import AlarmHistoryScreen
from hmi.ui.screens.alarms import AlarmsScreen
from hmi.ui.screens.approvals import ApprovalsScreen
from hmi.ui.screens.audit import AuditScreen
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.camera import CameraScreen
from hmi.ui.screens.config_versions import ConfigVersionsScreen
from hmi.ui.screens.engineer import EngineerScreen
from hmi.ui.screens.events import EventsScreen
from hmi.ui.screens.overview import OverviewScreen
from hmi.ui.screens.procedures import ProceduresScreen
from hmi.ui.screens.qa_console import QaConsoleScreen
from hmi.ui.screens.trends import TrendsScreen


@dataclass(frozen=True)
class Page:
    name: str
    key: str | None
    """Textual key name of the binding (``f2``); None: reached through the F1 page list."""
    label: str
    """What the footer shows."""
    make: Callable[[], PageScreen]
    """A new screen each time: a page holds no state of a previous visit or user."""
    permission: str | None = None
    """Shown only to a user whose role holds it (the core checks again on every call)."""


PAGES: tuple[Page, ...] = (
    Page("overview", "f2", "Overview", OverviewScreen),
    Page("alarms", "f3", "Alarms", AlarmsScreen),
    Page("procedures", "f4", "Procedures", ProceduresScreen),
    Page("approvals", "f5", "Approvals", ApprovalsScreen, "approve_command"),
    Page("trends", "f6", "Trends", TrendsScreen),
    Page("audit", "f7", "Audit trail", AuditScreen, "view_records"),
    Page("qa", "f8", "QA console", QaConsoleScreen, "query_records"),
    Page("engineer", "f9", "Engineer", EngineerScreen, "edit_configuration"),
    Page("admin", "f12", "Admin", AdminScreen, "administer_users"),
    Page("camera", None, "Camera", CameraScreen, "capture_image"),
    Page("alarm-history", None, "Alarm history", AlarmHistoryScreen, "view_records"),
    Page("events", None, "Security events", EventsScreen, "view_security_events"),
    Page(
        "config-versions",
        None,
        "Configuration versions",
        ConfigVersionsScreen,
        "approve_configuration",
    ),
)
"""Keys: F1 every page in a list, F2 overview, F3 alarms, F4 procedures, F5 approvals,
F6 trends, F7 audit trail, F8 QA console, F9 engineer, F10 log out, F12 admin (F11 is full
screen in many terminals). Pages without a key are opened from the F1 list."""


def page(name: str) -> Page:
    for p in PAGES:
        if p.name == name:
            return p
    raise KeyError(name)
