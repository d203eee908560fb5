"""Users, passwords, lockout and sessions (21 CFR 11.100, 11.300).

The rules live here; the store only keeps their results. Authentication
failures at login and at signing count toward the same lockout, and the
message a person sees is the same whether the user ID exists, the password
is wrong, or the account is locked or inactive, so the screen reveals
nothing about accounts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from hmi.core.clock import Clock
from hmi.core.config import SecurityPolicy
from hmi.core.errors import (
    AuthenticationError,
    HmiError,
    PasswordChangeRequired,
    PasswordPolicyError,
    PermissionDenied,
    SessionEnded,
)
from hmi.core.passwords import check_password_rules
from hmi.core.ports import IdentityReader, Notifier, PasswordHasher, Recorder
from hmi.core.records import (
    AuditEntry,
    NotificationEntry,
    Origin,
    PasswordSet,
    Record,
    SecurityEntry,
    SessionRecord,
    UserState,
    UserUpdate,
)

LOGIN_FAILED = (
    "Login failed: the user ID or password is not correct, or the account may not be used. "
    "After {n} failed attempts an account is locked until an administrator unlocks it."
)
SIGN_FAILED = (
    "Signature not accepted: the user ID or password is not correct, or the account may not "
    "sign. After {n} failed attempts an account is locked until an administrator unlocks it."
)


@dataclass
class Session:
    """A logged-in user at one terminal. Supervision goes on when it ends; only the session ends."""

    session_id: str
    user: UserState
    origin: Origin
    started_at: datetime
    last_activity: datetime
    last_full_auth: datetime | None
    password_change_required: bool = False
    signed_in_session: bool = False
    ended_at: datetime | None = None
    end_reason: str | None = None
    warned: bool = field(default=False, repr=False)

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @property
    def user_id(self) -> str:
        return self.user.user_id

    def record(self) -> SessionRecord:
        return SessionRecord(
            self.session_id,
            self.user.user_id,
            self.origin,
            self.started_at,
            self.last_activity,
            self.last_full_auth,
            self.ended_at,
            self.end_reason,
        )


@dataclass(frozen=True)
class SessionStatus:
    """How long a session has before it ends on its own, for a countdown on screen (SUP-10)."""

    seconds_left: float
    warning: bool
    """True once the inactivity warning is due (``session.warning_before_s``)."""
    ends_by: str
    """``inactivity_timeout`` or ``session_expired`` (the maximum session length)."""


LockoutHook = Callable[[str, Origin], None]
"""Told the user ID and the origin of the attempt that locked an account."""


class IdentityService:
    on_lockout: LockoutHook | None
    """Set by the runtime to raise a system alarm; told no more than the lockout event records."""
    on_session_ended: Callable[[Session], None] | None
    """Set by the runtime: a session ended other than by its own logout (inactivity,
    maximum length, an administrator), so the terminal showing it returns to its login."""

    def __init__(
        self,
        reader: IdentityReader,
        recorder: Recorder,
        hasher: PasswordHasher,
        policy: SecurityPolicy,
        clock: Clock,
        notifier: Notifier | None = None,
    ) -> None:
        self.reader = reader
        self.recorder = recorder
        self.hasher = hasher
        self.policy = policy
        self.clock = clock
        self.notifier = notifier
        self.sessions: dict[str, Session] = {}
        self.on_lockout = None
        self.on_session_ended = None

    # -- authentication ------------------------------------------------------

    async def _check_password(self, user: UserState | None, password: str) -> bool:
        if user is None:
            await self.hasher.burn(password)
            return False
        hashes = await self.reader.password_hashes(user.user_id, 1)
        if not hashes:
            await self.hasher.burn(password)
            return False
        return await self.hasher.verify(hashes[0], password)

    async def authenticate(
        self, user_id: str, password: str, origin: Origin, *, purpose: str
    ) -> UserState:
        """Check user ID and password; count a failure toward lockout (``purpose``: login or sign).

        Raises ``AuthenticationError`` with the same text for every failure.
        """
        user = await self.reader.get_user(user_id)
        ok = await self._check_password(user, password)
        message = (LOGIN_FAILED if purpose == "login" else SIGN_FAILED).format(
            n=self.policy.lockout_attempts
        )
        if user is not None and ok and user.active and not user.locked:
            if user.failed_attempts:
                await self.recorder.commit([UserUpdate(user.user_id, (("failed_attempts", 0),))])
                user = replace(user, failed_attempts=0)
            return user
        await self._record_failure(user_id, user, ok, origin, purpose)
        raise AuthenticationError(message)

    async def _record_failure(
        self, user_id: str, user: UserState | None, password_ok: bool, origin: Origin, purpose: str
    ) -> None:
        if user is None:
            why = "unknown user ID"
        elif not user.active:
            why = "account deactivated"
        elif user.locked:
            why = "account locked"
        else:
            why = "wrong password"
        records: list[Record] = [SecurityEntry(f"{purpose}_failed", user_id, origin, detail=why)]
        lock = False
        locked_id = user_id
        if user is not None and user.active and not user.locked and not password_ok:
            failures = user.failed_attempts + 1
            lock = failures >= self.policy.lockout_attempts
            records.append(
                UserUpdate(user.user_id, (("failed_attempts", failures), ("locked", lock)))
            )
            if lock:
                locked_id = user.user_id
                text = (
                    f"Account {user.user_id} ({user.full_name}) locked after {failures} failed "
                    f"attempts; last attempt ({purpose}) from terminal {origin.terminal_id}, "
                    f"source {origin.source}."
                )
                notice = NotificationEntry("admin", "lockout", text, subject=user.user_id)
                records += [
                    SecurityEntry("lockout", user.user_id, origin, detail=f"{failures} failures"),
                    notice,
                ]
        await self.recorder.commit(records)
        if lock and self.on_lockout is not None:
            self.on_lockout(locked_id, origin)
        if lock and self.notifier is not None:
            await self.notifier.notify(records[-1])  # type: ignore[arg-type]

    # -- sessions ------------------------------------------------------------

    async def login(self, user_id: str, password: str, origin: Origin) -> Session:
        user = await self.authenticate(user_id, password, origin, purpose="login")
        now = self.clock.now()
        change_reason = self._password_change_reason(user, now)
        session = Session(
            session_id=uuid.uuid4().hex,
            user=user,
            origin=origin,
            started_at=now,
            last_activity=now,
            last_full_auth=now,
            password_change_required=change_reason is not None,
        )
        self.sessions[session.session_id] = session
        await self.recorder.commit(
            [
                session.record(),
                SecurityEntry(
                    "login",
                    user.user_id,
                    origin,
                    session_id=session.session_id,
                    detail=change_reason,
                ),
            ]
        )
        return session

    def _password_change_reason(self, user: UserState, now: datetime) -> str | None:
        if user.must_change_password:
            return "temporary password must be changed"
        days = self.policy.password.expiry_days
        changed = user.password_changed_at
        if days and changed is not None and now >= changed + timedelta(days=days):
            return f"password expired (older than {days} days)"
        return None

    def require_session(self, session: Session, *, allow_password_change: bool = False) -> Session:
        """The session if it may act now; refuses ended sessions and pending password changes."""
        current = self.sessions.get(session.session_id)
        if current is None or not current.active:
            raise SessionEnded("Your session has ended. Log in again.")
        if current.password_change_required and not allow_password_change:
            raise PasswordChangeRequired(
                "Your password must be changed before you can do anything else."
            )
        return current

    def require_permission(self, session: Session, action: str) -> Session:
        current = self.require_session(session)
        if not self.policy.permitted(current.user.roles, action):
            raise PermissionDenied(
                f"{current.user.full_name} ({', '.join(current.user.roles)}) may not "
                f"{action.replace('_', ' ')}."
            )
        return current

    def touch(self, session: Session) -> None:
        """Keyboard or mouse activity at the session's terminal."""
        current = self.sessions.get(session.session_id)
        if current is not None and current.active:
            current.last_activity = self.clock.now()
            current.warned = False

    async def end_session(
        self,
        session: Session,
        reason: str,
        *,
        also: Sequence[Record] = (),
        actor_id: str | None = None,
        detail: str | None = None,
    ) -> bool:
        """End ``session`` on the record (``reason`` is the security event); False if it had
        ended already. ``also`` is committed with it (the administrator's own audit row)."""
        current = self.sessions.pop(session.session_id, None)
        if current is None or not current.active:
            return False
        current.ended_at = self.clock.now()
        current.end_reason = reason
        event = SecurityEntry(
            reason,
            current.user.user_id,
            current.origin,
            actor_id=actor_id,
            session_id=current.session_id,
            detail=detail,
        )
        await self.recorder.commit([current.record(), event, *also])
        if reason != "logout" and self.on_session_ended is not None:
            self.on_session_ended(current)
        return True

    async def logout(self, session: Session) -> None:
        await self.end_session(session, "logout")

    def sessions_to_warn(self) -> list[Session]:
        """Sessions that will time out within the warning period and have not been warned."""
        now = self.clock.now()
        policy = self.policy.session
        due = []
        for s in self.sessions.values():
            left = (s.last_activity + timedelta(seconds=policy.inactivity_timeout_s)) - now
            if not s.warned and left <= timedelta(seconds=policy.warning_before_s):
                s.warned = True
                due.append(s)
        return due

    def session_status(self, session: Session) -> SessionStatus:
        """Time left before ``expire_sessions`` ends ``session``, whichever limit comes first."""
        now = self.clock.now()
        policy = self.policy.session
        idle = session.last_activity + timedelta(seconds=policy.inactivity_timeout_s) - now
        length = session.started_at + timedelta(seconds=policy.max_session_s) - now
        left, ends_by = (
            (idle, "inactivity_timeout") if idle <= length else (length, "session_expired")
        )
        seconds = max(left.total_seconds(), 0.0)
        return SessionStatus(seconds, seconds <= policy.warning_before_s, ends_by)

    async def expire_sessions(self) -> list[Session]:
        """End sessions idle past the timeout or older than the maximum length."""
        now = self.clock.now()
        policy = self.policy.session
        ended = []
        for s in list(self.sessions.values()):
            if now - s.last_activity >= timedelta(seconds=policy.inactivity_timeout_s):
                await self.end_session(s, "inactivity_timeout")
                ended.append(s)
            elif now - s.started_at >= timedelta(seconds=policy.max_session_s):
                await self.end_session(s, "session_expired")
                ended.append(s)
        return ended

    # -- passwords -----------------------------------------------------------

    async def change_password(self, session: Session, old_password: str, new_password: str) -> None:
        """A user changes their own password: any time, and required when temporary or expired."""
        current = self.require_session(session, allow_password_change=True)
        user = await self.authenticate(
            current.user_id, old_password, current.origin, purpose="password_change"
        )
        await self._set_password(user, new_password, current.origin, actor=user)
        current.password_change_required = False
        current.user = replace(user, must_change_password=False)

    async def _set_password(
        self, user: UserState, new_password: str, origin: Origin, actor: UserState
    ) -> None:
        check_password_rules(self.policy, user.user_id, new_password)
        history = await self.reader.password_hashes(
            user.user_id, max(self.policy.password.history, 1)
        )
        for old_hash in history[: self.policy.password.history]:
            if await self.hasher.verify(old_hash, new_password):
                raise PasswordPolicyError(
                    f"The password may not be one of the last {self.policy.password.history} "
                    "passwords."
                )
        now = self.clock.now()
        new_hash = await self.hasher.hash(new_password)
        await self.recorder.commit(
            [
                PasswordSet(user.user_id, new_hash, temporary=False, set_at=now),
                UserUpdate(
                    user.user_id,
                    (("must_change_password", False), ("password_changed_at", now)),
                ),
                SecurityEntry("password_changed", user.user_id, origin, actor_id=actor.user_id),
                AuditEntry(
                    "change_password",
                    "done",
                    actor.user_id,
                    actor.full_name,
                    origin,
                    target=f"user:{user.user_id}",
                ),
            ]
        )

    # -- administration (PWD-4, SIG-3): callers sign these ---------------------

    async def get_existing(self, user_id: str) -> UserState:
        user = await self.reader.get_user(user_id)
        if user is None:
            raise HmiError(f"There is no account {user_id}.")
        return user

    async def forget_sessions_of(self, user_id: str, reason: str) -> None:
        for s in [s for s in self.sessions.values() if s.user_id == user_id]:
            await self.end_session(s, reason)
