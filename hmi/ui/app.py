"""The Custos terminal: a thin Textual shell over the Terminal API.

The app holds what every screen shares (the API, this terminal's origin, the
clock, the logged-in session, device link states) and moves between login
and the pages. It decides what to show; the core decides what is allowed and
what is recorded. See docs/decisions/0002-terminal-ui.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import tzinfo
from typing import ClassVar, Protocol

from textual import events
from textual.app import App
from textual.binding import Binding, BindingType

from hmi.core.api import TerminalAPI
from hmi.core.api_records import NotificationRow, fresh_notices
from hmi.core.clock import Clock, SystemClock
from hmi.core.errors import HmiError, SessionEnded
from hmi.core.identity import Session
from hmi.core.records import Origin
from hmi.core.scanner import LinkEvent
from hmi.ui.navigation import PAGES, page
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.login import LoginScreen
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.pages import PagesDialog
from hmi.ui.screens.password import PasswordScreen
from hmi.ui.theme import CUSTOS_THEME

TIMED_OUT = "You were logged out after a period without activity."
SESSION_ENDED = "Your session has ended. Log in again."
ENDED = {
    "inactivity_timeout": TIMED_OUT,
    "session_expired": "You were logged out: the session reached its maximum length.",
    "ended_by_administrator": "An administrator ended your session.",
}
LOGGED_OUT = "Logged out."


class RuntimeHooks(Protocol):
    """The runtime's callbacks the terminal listens to (``Runtime.events``)."""

    on_link: Callable[[LinkEvent], None] | None
    on_session_warning: Callable[[Session], None] | None
    on_session_ended: Callable[[Session], None] | None


class CustosApp(App[None]):
    CSS_PATH = "custos.tcss"
    TITLE = "Custos"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "pages", "Pages"),
        *(Binding(p.key, f"go('{p.name}')", p.label) for p in PAGES if p.key),
        Binding("f10", "logout", "Log out"),
    ]

    def __init__(
        self,
        api: TerminalAPI,
        origin: Origin,
        *,
        plant_name: str,
        clock: Clock | None = None,
        tz: tzinfo | None = None,
        links: dict[str, str] | None = None,
        notices_every_s: float | None = 1.0,
    ) -> None:
        super().__init__()
        self.api = api
        self.origin = origin
        self.plant_name = plant_name
        self.clock = clock or SystemClock()
        self.tz = tz
        """Time zone of the displayed times; None: the host's."""
        self.links: dict[str, str] = dict(links or {})
        """Device → link state word (UP, DOWN, CONNECTING)."""
        self.session: Session | None = None
        self.notices_every_s = notices_every_s
        """How often to look for new notifications; None: they are pushed (``show_notice``)."""
        self._last_notice: int | None = None
        self.register_theme(CUSTOS_THEME)
        self.theme = CUSTOS_THEME.name

    def on_mount(self) -> None:
        self.push_screen(LoginScreen())
        if self.notices_every_s is not None:
            self.set_interval(self.notices_every_s, self.check_notices)

    # -- runtime events (set by attach) ---------------------------------------------------

    def attach(self, hooks: RuntimeHooks) -> None:
        """Listen to the runtime's link and session events (same event loop)."""
        hooks.on_link = self.link_changed
        hooks.on_session_warning = self.session_warning
        hooks.on_session_ended = self.session_lost

    def link_changed(self, event: LinkEvent) -> None:
        self.links[event.device] = event.state.value

    def session_warning(self, session: Session) -> None:
        if self.session is not None and session.session_id == self.session.session_id:
            left = self.api.seconds_to_logout(self.session)
            self.call_later(
                self.notify,
                f"No activity: automatic logout in {int(left)} s. Press any key to stay.",
                title="Inactivity",
                severity="warning",
                timeout=min(max(left, 1.0), 10.0),
            )

    async def check_notices(self) -> None:
        """Pop up notifications for the user's roles that arrived since the login.

        A lockout notifies administrators: whoever is logged in with that role
        sees it within about a second, whatever page is shown. Older ones are
        on the events page.
        """
        session = self.session
        if session is None:
            return
        fresh, last = await fresh_notices(self.api.records, session, self._last_notice)
        if session is not self.session:  # logged out meanwhile: not for the next user
            return
        self._last_notice = last
        for row in fresh:
            self.show_notice(row)

    def show_notice(self, row: NotificationRow) -> None:
        self.notify(row.message, title=f"Notification: {row.kind}", severity="warning", timeout=30)

    def session_lost(self, session: Session, reason: str | None = None) -> None:
        """The core ended this terminal's session (inactivity, maximum length, an
        administrator): back to login, saying why."""
        if self.session is not None and session.session_id == self.session.session_id:
            self.session = None
            why = reason or session.end_reason or ""
            self.call_later(self.return_to_login, ENDED.get(why, SESSION_ENDED))

    # -- activity and sessions -------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        """Any key or mouse event from the terminal is activity (SUP-10)."""
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            self.touch()
        await super().on_event(event)

    def touch(self) -> None:
        if self.session is not None:
            self.api.touch(self.session)

    def start_session(self, session: Session) -> None:
        """After a successful login: a required password change first, then the first page."""
        self.session = session
        self._last_notice = None
        self.refresh_bindings()
        if session.password_change_required:
            self.push_screen(PasswordScreen(forced=True))
        else:
            self.open_page(PAGES[0].name)

    def return_to_login(self, message: str = "") -> None:
        """Drop every screen, so nothing of the previous user stays, and show the login."""
        self.session = None
        self.refresh_bindings()
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(LoginScreen(message))

    async def action_logout(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            self.return_to_login(LOGGED_OUT)
            with contextlib.suppress(HmiError):  # already ended by the core, which recorded why
                await self.api.logout(session)

    # -- navigation ------------------------------------------------------------------------

    def open_page(self, name: str) -> None:
        screen = page(name).make()
        if isinstance(self.screen, PageScreen):
            if self.screen.page == name:
                return
            self.switch_screen(screen)
        else:
            while len(self.screen_stack) > 1:
                self.pop_screen()
            self.push_screen(screen)

    def action_pages(self) -> None:
        """F1: every page this user may open, including those without a key."""
        if self.session is None or not isinstance(self.screen, PageScreen):
            return
        allowed = self.api.permissions(self.session)
        pages = [
            (p.name, p.label, p.key)
            for p in PAGES
            if p.permission is None or p.permission in allowed
        ]
        self.push_screen(PagesDialog(pages), self._go_chosen)

    def _go_chosen(self, name: str | None) -> None:
        if name is not None:
            self.action_go(name)

    def action_go(self, name: str) -> None:
        if self.session is not None and isinstance(self.screen, PageScreen):
            self.open_page(name)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Page and logout keys only while logged in; hidden from the footer otherwise."""
        if action == "logout":
            return self.session is not None
        if action == "pages":
            return self.session is not None and not self.session.password_change_required
        if action == "go":
            if self.session is None or self.session.password_change_required:
                return False
            wanted = page(str(parameters[0])).permission if parameters else None
            return wanted is None or wanted in self.api.permissions(self.session)
        return True

    # -- refusals --------------------------------------------------------------------------

    def show_refusal(self, error: HmiError) -> None:
        """A refusal as the core words it; an ended session also returns to login."""
        if isinstance(error, SessionEnded) and self.session is not None:
            self.session = None
            self.return_to_login(error.message)
            return
        self.push_screen(MessageDialog(error.title, error.message))
