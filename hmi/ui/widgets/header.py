"""The status header: where am I, who is logged in, what time it is, are the devices there.

Always on top of every full screen. It refreshes itself once a second from
the app's state and the Terminal API; nothing in it is coloured unless it is
abnormal (a link not UP, the auto-logout countdown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from hmi.core.errors import HmiError
from hmi.ui.format import countdown, local_time

if TYPE_CHECKING:
    from hmi.ui.app import CustosApp

WARN_BELOW_S = 120.0
"""The countdown to auto-logout is shown once less than this is left."""


class StatusHeader(Static):
    DEFAULT_CSS = """
    StatusHeader { height: 2; }
    """

    def on_mount(self) -> None:
        self.update(self.render_status())
        self.set_interval(1.0, self.tick)

    @property
    def custos(self) -> CustosApp:
        return cast("CustosApp", self.app)

    def tick(self) -> None:
        app = self.custos
        if app.session is not None and app.api.seconds_to_logout(app.session) <= 0:
            try:  # the countdown ran out: say which limit, as the core will record it
                ends_by: str | None = app.api.session_status(app.session).ends_by
            except HmiError:
                ends_by = None
            app.session_lost(app.session, ends_by)
            return
        self.update(self.render_status())

    def render_status(self) -> Table:
        app = self.custos
        grid = Table.grid(expand=True)
        grid.add_column(justify="left", ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        where = Text(f"{app.plant_name} · {app.origin.terminal_id}")
        now = Text(local_time(app.clock.now(), app.tz))
        grid.add_row(where, now)
        grid.add_row(self._who(), self._state())
        return grid

    def _who(self) -> Text:
        session = self.custos.session
        if session is None:
            return Text("Not logged in")
        user = session.user
        out = Text(f"{user.full_name} ({user.user_id}, {', '.join(user.roles)})")
        waiting = self._approvals_waiting()
        if waiting:
            out.append("  ")
            out.append(f"APPROVALS {waiting}", style="bold reverse")
        return out

    def _approvals_waiting(self) -> int:
        """Pending approvals, counted only for a user who may approve (0 otherwise)."""
        app = self.custos
        if app.session is None:
            return 0
        try:
            if "approve_command" not in app.api.permissions(app.session):
                return 0
            return len(app.api.pending_approvals(app.session))
        except HmiError:
            return 0

    def _state(self) -> Text:
        app = self.custos
        out = Text()
        if app.session is not None:
            left = app.api.seconds_to_logout(app.session)
            if left < WARN_BELOW_S:
                out.append(f"AUTO-LOGOUT IN {countdown(left)}", style="bold reverse")
                out.append("  ")
        for n, (device, state) in enumerate(sorted(app.links.items())):
            if n:
                out.append(" ")
            style = "" if state == "UP" else "bold reverse"
            out.append(f"{device} {state}", style=style)
        return out
