"""The Admin screen: accounts and the signed acts on them (11.300, PWD-4); who is
logged in at which terminal, and ending a session from here.

The table is ``api.admin.users``: no password or hash ever reaches the
terminal. Each act is a small form (what, and the reason), then the
signature dialog, then the desk; the core checks the permission and the
terminal and records refusals. A temporary password (new account, reset) is
shown once, in a dialog, to be handed over; it is kept nowhere on screen
after that dialog closes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from hmi.core.api_admin import AdminDesk
from hmi.core.api_types import SessionView, UserView
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.ui.format import local_time
from hmi.ui.screens.base import PageScreen
from hmi.ui.screens.esign import SignDialog
from hmi.ui.screens.message import MessageDialog
from hmi.ui.screens.sign import FormDialog

COLUMNS = ("User ID", "Full name", "Roles", "State", "Password")
SESSION_COLUMNS = ("Terminal", "User", "Source", "Logged in", "Last activity")
SESSIONS_EVERY_S = 5.0
NO_DESK = HmiError("This terminal offers no user administration.")


def roles_of(text: str) -> tuple[str, ...]:
    return tuple(r.strip() for r in text.replace(" ", ",").split(",") if r.strip())


class AdminScreen(PageScreen):
    page = "admin"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add user"),
        Binding("r", "reset", "Reset password"),
        Binding("o", "roles", "Roles"),
        Binding("u", "unlock", "Unlock"),
        Binding("d", "deactivate", "Deactivate"),
        Binding("x", "end_session", "End session"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("Accounts", classes="page-title")
        table: DataTable[str] = DataTable(id="users", cursor_type="row")
        table.add_columns(*COLUMNS)
        yield table
        yield Static("Logged in now (x ends the selected session)", classes="page-title")
        sessions: DataTable[str] = DataTable(id="sessions", cursor_type="row")
        sessions.add_columns(*SESSION_COLUMNS)
        yield sessions

    def on_mount(self) -> None:
        self.query_one("#users", DataTable).focus()
        self.reload()
        self.set_interval(SESSIONS_EVERY_S, self.reload_sessions)

    @property
    def desk(self) -> AdminDesk:
        if self.api.admin is None:
            raise NO_DESK
        return self.api.admin

    def reload(self) -> None:
        if self.api.admin is None:
            self.custos.show_refusal(NO_DESK)
            return
        self.call_core(self.desk.users(self.session), done=self.show_users)
        self.reload_sessions()

    def reload_sessions(self) -> None:
        if self.api.admin is not None and self.custos.session is not None:
            self.call_core(self.desk.sessions(self.session), done=self.show_sessions)

    def show_sessions(self, sessions: list[SessionView]) -> None:
        table: DataTable[str] = self.query_one("#sessions", DataTable)
        row = table.cursor_row
        table.clear()
        tz = self.custos.tz
        for s in sessions:
            table.add_row(
                s.terminal_id,
                f"{s.user_id} ({s.full_name})",
                s.source,
                local_time(s.started_at, tz),
                local_time(s.last_activity, tz),
                key=s.session_id,
            )
        if sessions:
            table.move_cursor(row=min(row, len(sessions) - 1))

    def show_users(self, users: list[UserView]) -> None:
        table: DataTable[str] = self.query_one("#users", DataTable)
        row = table.cursor_row
        table.clear()
        for u in users:
            password = "must change" if u.must_change_password else ""
            table.add_row(
                u.user_id, u.full_name, ", ".join(u.roles), u.state, password, key=u.user_id
            )
        if users:
            table.move_cursor(row=min(row, len(users) - 1))

    def selected(self) -> str | None:
        table: DataTable[str] = self.query_one("#users", DataTable)
        if table.row_count == 0:
            return None
        return str(table.get_row_at(table.cursor_row)[0])

    # -- the acts ------------------------------------------------------------------------

    def _signed(
        self,
        title: str,
        fields: list[tuple[str, str, str]],
        rows: Callable[[dict[str, str]], list[tuple[str, str]]],
        act: Callable[[dict[str, str], Credentials], Awaitable[object]],
        shown: Callable[[dict[str, str], object], None] | None = None,
    ) -> None:
        """Form → signature → the desk; the table is read again after a signed act."""

        def filled(values: dict[str, str] | None) -> None:
            if values is None:
                return

            def after(result: object) -> None:
                if result is None:
                    return
                if shown is not None:
                    shown(values, result)
                self.reload()

            dialog = SignDialog(title, rows(values), lambda c, _reason: act(values, c))
            self.app.push_screen(dialog, after)

        self.app.push_screen(FormDialog(title, fields), filled)

    def _temporary(self, values: dict[str, str], result: object) -> None:
        self.app.push_screen(
            MessageDialog(
                "Temporary password",
                f"Temporary password for {values['user_id']}: {result}\n"
                "Shown once: hand it over now. It must be changed at first login.",
                kind="outcome",
            )
        )

    def action_add(self) -> None:
        def rows(v: dict[str, str]) -> list[tuple[str, str]]:
            change = f"{v['full_name']}; roles={','.join(roles_of(v['roles']))}"
            return [
                ("Action", "add user"),
                ("Target", f"user:{v['user_id']}"),
                ("Change", change),
                ("Meaning", "performed"),
                ("Reason", v["reason"]),
            ]

        self._signed(
            "Add user",
            [
                ("user_id", "User ID", ""),
                ("full_name", "Full name", ""),
                ("roles", "Roles", "operator"),
                ("reason", "Reason", ""),
            ],
            rows,
            lambda v, c: self.desk.add_user(
                self.session,
                self.origin,
                v["user_id"],
                v["full_name"],
                roles_of(v["roles"]),
                v["reason"],
                c,
            ),
            self._temporary,
        )

    def _on_selected(
        self,
        title: str,
        action: str,
        call: Callable[[str, str, Credentials], Awaitable[object]],
        change: str | None = None,
        shown: Callable[[dict[str, str], object], None] | None = None,
    ) -> None:
        user_id = self.selected()
        if user_id is None:
            return

        def rows(v: dict[str, str]) -> list[tuple[str, str]]:
            out = [("Action", action), ("Target", f"user:{user_id}")]
            if change:
                out.append(("Change", change))
            return [*out, ("Meaning", "performed"), ("Reason", v["reason"])]

        self._signed(
            f"{title}: {user_id}",
            [("reason", "Reason", "")],
            rows,
            lambda v, c: call(user_id, v["reason"], c),
            None if shown is None else lambda v, r: shown({**v, "user_id": user_id}, r),
        )

    def action_reset(self) -> None:
        self._on_selected(
            "Reset password",
            "reset password",
            lambda u, r, c: self.desk.reset_password(self.session, self.origin, u, r, c),
            shown=self._temporary,
        )

    def action_unlock(self) -> None:
        self._on_selected(
            "Unlock",
            "unlock user",
            lambda u, r, c: self.desk.unlock(self.session, self.origin, u, r, c),
            "locked → unlocked",
        )

    def action_deactivate(self) -> None:
        self._on_selected(
            "Deactivate",
            "deactivate user",
            lambda u, r, c: self.desk.deactivate(self.session, self.origin, u, r, c),
            "active → deactivated",
        )

    def action_end_session(self) -> None:
        """Log someone out from here: a reason, no signature (it ends access, grants none)."""
        table: DataTable[str] = self.query_one("#sessions", DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        terminal, user = (str(x) for x in table.get_row_at(table.cursor_row)[:2])
        if key is None:
            return
        session_id = str(key)

        def filled(values: dict[str, str] | None) -> None:
            if values is None:
                return

            def ended(_: object) -> None:
                self.app.push_screen(
                    MessageDialog(
                        "Session ended",
                        f"{user} at {terminal} is logged out; the terminal shows its login.",
                        kind="outcome",
                    )
                )
                self.reload_sessions()

            call = self.desk.end_session(self.session, self.origin, session_id, values["reason"])
            self.call_core(call, done=ended)

        self.app.push_screen(
            FormDialog(f"End the session of {user} at {terminal}", [("reason", "Reason", "")]),
            filled,
        )

    def action_roles(self) -> None:
        user_id = self.selected()
        if user_id is None:
            return
        table: DataTable[str] = self.query_one("#users", DataTable)
        current = str(table.get_row_at(table.cursor_row)[2])

        def rows(v: dict[str, str]) -> list[tuple[str, str]]:
            new = ",".join(roles_of(v["roles"]))
            return [
                ("Action", "set roles"),
                ("Target", f"user:{user_id}"),
                ("Change", f"{current.replace(' ', '')} → {new}"),
                ("Meaning", "performed"),
                ("Reason", v["reason"]),
            ]

        self._signed(
            f"Roles: {user_id}",
            [("roles", "Roles", current), ("reason", "Reason", "")],
            rows,
            lambda v, c: self.desk.set_roles(
                self.session, self.origin, user_id, roles_of(v["roles"]), v["reason"], c
            ),
        )
