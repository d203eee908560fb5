"""The administration side of the Terminal API: accounts, from a terminal (11.300, PWD-4).

``UserAdministration`` does the work and signs it; this desk adds what a
terminal adds to the CLI: the action must be allowed at the terminal and
the session used where it began (SUP-9), and every refusal is recorded in
the audit trail before the administrator sees it. Accounts are shown as
``UserView``: no password hash ever leaves the core. Temporary passwords are
returned once, to be shown once and handed over; they are never recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from hmi.core.api_refusals import record_refusal
from hmi.core.api_types import SessionView, UserView
from hmi.core.commands import Credentials
from hmi.core.errors import HmiError
from hmi.core.identity import IdentityService, Session
from hmi.core.ports import Recorder
from hmi.core.records import AuditEntry, Origin, UserState
from hmi.core.terminals import TerminalConfig, check_terminal
from hmi.core.useradmin import ADMIN_PERMISSION, UserAdministration
from hmi.core.useradmin import Credentials as AdminCredentials

ENDED_BY_ADMINISTRATOR = "ended_by_administrator"
"""The security event, and the session's end reason, when an administrator logs someone out."""

T = TypeVar("T")


def user_view(user: UserState) -> UserView:
    state = "deactivated" if not user.active else "locked" if user.locked else "active"
    return UserView(
        user.user_id,
        user.full_name,
        tuple(user.roles),
        state,
        user.must_change_password,
        user.failed_attempts,
        user.password_changed_at,
        user.created_at,
        user.created_by,
        user.deactivated_at,
    )


class AdminDesk:
    def __init__(
        self,
        identity: IdentityService,
        admin: UserAdministration,
        terminals: list[TerminalConfig],
        recorder: Recorder,
    ) -> None:
        self.identity = identity
        self.admin = admin
        self.terminals = terminals
        self.recorder = recorder

    async def users(self, session: Session) -> list[UserView]:
        """Every account ever issued (accounts are deactivated, never deleted), by user ID."""
        self.identity.require_permission(session, ADMIN_PERMISSION)
        return sorted(
            (user_view(u) for u in await self.identity.reader.list_users()),
            key=lambda v: v.user_id,
        )

    async def _act(
        self,
        session: Session,
        origin: Origin,
        action: str,
        user_id: str,
        reason: str,
        work: Callable[[AdminCredentials], Awaitable[T]],
        signature: Credentials,
    ) -> T:
        """Permission and terminal first, then the signed act; a refusal is recorded."""
        try:
            current = self.identity.require_permission(session, ADMIN_PERMISSION)
            check_terminal(self.terminals, current.origin, origin, ADMIN_PERMISSION, None)
            return await work(AdminCredentials(signature.password, signature.user_id))
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, action, f"user:{user_id}", exc, reason
            ) from None

    async def add_user(
        self,
        session: Session,
        origin: Origin,
        user_id: str,
        full_name: str,
        roles: tuple[str, ...],
        reason: str,
        signature: Credentials,
    ) -> str:
        """Create an account; returns its temporary password, to be shown once."""
        return await self._act(
            session,
            origin,
            "add_user",
            user_id,
            reason,
            lambda c: self.admin.add_user(session, c, user_id, full_name, roles, reason),
            signature,
        )

    async def reset_password(
        self, session: Session, origin: Origin, user_id: str, reason: str, signature: Credentials
    ) -> str:
        """A new temporary password (shown once); the user's sessions end."""
        return await self._act(
            session,
            origin,
            "reset_password",
            user_id,
            reason,
            lambda c: self.admin.reset_password(session, c, user_id, reason),
            signature,
        )

    async def deactivate(
        self, session: Session, origin: Origin, user_id: str, reason: str, signature: Credentials
    ) -> UserView:
        await self._act(
            session,
            origin,
            "deactivate_user",
            user_id,
            reason,
            lambda c: self.admin.deactivate(session, c, user_id, reason),
            signature,
        )
        return await self._view(user_id)

    async def unlock(
        self, session: Session, origin: Origin, user_id: str, reason: str, signature: Credentials
    ) -> UserView:
        await self._act(
            session,
            origin,
            "unlock_user",
            user_id,
            reason,
            lambda c: self.admin.unlock(session, c, user_id, reason),
            signature,
        )
        return await self._view(user_id)

    async def set_roles(
        self,
        session: Session,
        origin: Origin,
        user_id: str,
        roles: tuple[str, ...],
        reason: str,
        signature: Credentials,
    ) -> UserView:
        await self._act(
            session,
            origin,
            "set_roles",
            user_id,
            reason,
            lambda c: self.admin.set_roles(session, c, user_id, roles, reason),
            signature,
        )
        return await self._view(user_id)

    # -- who is logged in where ----------------------------------------------------------

    async def sessions(self, session: Session) -> list[SessionView]:
        """Everyone logged in now: at which terminal, from where, since when."""
        self.identity.require_permission(session, ADMIN_PERMISSION)
        return sorted(
            (
                SessionView(
                    s.session_id,
                    s.user.user_id,
                    s.user.full_name,
                    s.origin.terminal_id,
                    s.origin.source,
                    s.started_at,
                    s.last_activity,
                )
                for s in self.identity.sessions.values()
                if s.active
            ),
            key=lambda v: (v.terminal_id, v.started_at),
        )

    async def end_session(
        self, session: Session, origin: Origin, session_id: str, reason: str
    ) -> None:
        """Log someone out from here: a terminal left logged in, a user who has left.

        Recorded twice: as the ended session's security event (at its terminal,
        naming the administrator and the reason) and as the administrator's act
        in the audit trail (at theirs). Their terminal goes back to its login.
        """
        target = f"session:{session_id}"
        try:
            current = self.identity.require_permission(session, ADMIN_PERMISSION)
            check_terminal(self.terminals, current.origin, origin, ADMIN_PERMISSION, None)
            if not reason.strip():
                raise HmiError("Say why the session is ended; the reason is recorded.")
            other = self.identity.sessions.get(session_id)
            if other is None or not other.active:
                raise HmiError("That session has ended already.", "Not logged in")
            if other.session_id == current.session_id:
                raise HmiError("This is your own session: log out instead (F10).")
        except HmiError as exc:
            raise await record_refusal(
                self.recorder, session, origin, "end_session", target, exc, reason
            ) from None
        where = f"{other.user.user_id} at {other.origin.terminal_id} ({other.origin.source})"
        act = AuditEntry(
            "end_session",
            "done",
            current.user.user_id,
            current.user.full_name,
            origin,
            target=target,
            reason=reason,
            detail=where,
        )
        by = f"by {current.user.user_id} at {origin.terminal_id}: {reason}"
        await self.identity.end_session(
            other, ENDED_BY_ADMINISTRATOR, also=[act], actor_id=current.user.user_id, detail=by
        )

    async def _view(self, user_id: str) -> UserView:
        return user_view(await self.identity.get_existing(user_id))
