"""The alarm banner: the newest of the most urgent unacknowledged alarms, and how many wait.

Priority reads from glyphs and words as well as colour (``!!!! P1 CRITICAL``),
so a monochrome terminal or a colour-blind operator loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widgets import Static

from hmi.core.alarm_types import PRIORITY_NAMES
from hmi.core.api_types import AlarmBanner, AlarmView
from hmi.core.errors import HmiError
from hmi.ui.format import local_time

if TYPE_CHECKING:
    from hmi.ui.app import CustosApp

REFRESH_S = 0.5


def priority_text(alarm: AlarmView) -> str:
    """``!!!! P1 CRITICAL``: the core's glyphs and number, and the word."""
    word = PRIORITY_NAMES.get(alarm.priority, "").upper()
    return f"{alarm.priority_label} {word}".rstrip()


def banner_text(banner: AlarmBanner, app: CustosApp) -> Text:
    if banner.top is None:
        return Text("No unacknowledged alarms")
    top = banner.top
    out = Text()
    out.append(f" {priority_text(top)} ", style="bold reverse")
    out.append(f" {top.message} ")
    if top.activated_at is not None:
        out.append(local_time(top.activated_at, app.tz)[11:19])
    more = banner.unacknowledged - 1
    out.append(f"   unacknowledged: {banner.unacknowledged}")
    if more:
        out.append(f" ({more} more)")
    return out


class AlarmBannerBar(Static):
    DEFAULT_CSS = """
    AlarmBannerBar { height: 1; }
    """

    def on_mount(self) -> None:
        self.refresh_banner()
        self.set_interval(REFRESH_S, self.refresh_banner)

    def refresh_banner(self) -> None:
        app = cast("CustosApp", self.app)
        if app.session is None or app.api.alarms is None:
            return
        try:
            banner = app.api.alarms.banner(app.session)
        except HmiError:
            return  # the session ended: the app returns to login
        self.set_class(banner.top is not None, "alarming")
        if banner.top is not None:
            for p in range(1, 5):
                self.set_class(banner.top.priority == p, f"p{p}")
        self.update(banner_text(banner, app))
