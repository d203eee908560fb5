"""Account administration: every act is signed by the administrator and recorded (11.300, PWD-4).

Temporary passwords are generated here and shown once to the administrator
to hand over; they must be changed at first use, so no administrator learns
or sets a user's working password (SIG-3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hmi.core.errors import HmiError
from hmi.core.esign import ESignService, SignatureRequest
from hmi.core.identity import IdentityService, Session
from hmi.core.passwords import (
    check_new_user,
    check_password_rules,
    check_roles,
    temporary_password,
)
from hmi.core.records import (
    AuditEntry,
    NewUser,
    Origin,
    PasswordSet,
    Record,
    SecurityEntry,
    UserState,
    UserUpdate,
)

ADMIN_PERMISSION = "administer_users"
ADMIN_MEANING = "performed"


@dataclass(frozen=True)
class Credentials:
    """What the signer typed: the password, and the user ID where the signing mode needs it."""

    password: str
    user_id: str | None = None


class UserAdministration:
    def __init__(self, identity: IdentityService, esign: ESignService) -> None:
        self.identity = identity
        self.esign = esign

    # -- the records each act writes ------------------------------------------

    async def new_user_records(
        self,
        user_id: str,
        full_name: str,
        roles: tuple[str, ...],
        temporary: str,
        actor_id: str,
        actor_name: str,
        origin: Origin,
        signature_ids: tuple[str, ...] = (),
        reason: str | None = None,
    ) -> list[Record]:
        """Records creating an account with a temporary password; IDs and names are never reused."""
        check_new_user(user_id, full_name, roles)
        if await self.identity.reader.get_user(user_id) is not None:
            raise HmiError(f"User ID {user_id} has been issued before; user IDs are never reused.")
        if await self.identity.reader.user_by_name(full_name.strip()) is not None:
            raise HmiError(f"An account for {full_name.strip()!r} exists; full names are unique.")
        check_password_rules(self.identity.policy, user_id, temporary)
        now = self.identity.clock.now()
        state = UserState(
            user_id=user_id,
            full_name=full_name.strip(),
            roles=roles,
            active=True,
            locked=False,
            failed_attempts=0,
            must_change_password=True,
            password_changed_at=now,
            created_at=now,
            created_by=actor_id,
        )
        return [
            NewUser(state),
            PasswordSet(
                user_id, await self.identity.hasher.hash(temporary), temporary=True, set_at=now
            ),
            AuditEntry(
                "add_user",
                "done",
                actor_id,
                actor_name,
                origin,
                target=f"user:{user_id}",
                new_value=f"{state.full_name}; roles={','.join(roles)}",
                signature_ids=signature_ids,
                reason=reason,
            ),
            SecurityEntry("user_added", user_id, origin, actor_id=actor_id),
        ]

    async def reset_password_records(
        self,
        user: UserState,
        temporary: str,
        admin: UserState,
        origin: Origin,
        signature_ids: tuple[str, ...],
        reason: str,
    ) -> list[Record]:
        now = self.identity.clock.now()
        return [
            PasswordSet(
                user.user_id, await self.identity.hasher.hash(temporary), temporary=True, set_at=now
            ),
            UserUpdate(
                user.user_id,
                (
                    ("must_change_password", True),
                    ("password_changed_at", now),
                    ("failed_attempts", 0),
                ),
            ),
            AuditEntry(
                "reset_password",
                "done",
                admin.user_id,
                admin.full_name,
                origin,
                target=f"user:{user.user_id}",
                reason=reason,
                signature_ids=signature_ids,
            ),
            SecurityEntry("password_reset", user.user_id, origin, actor_id=admin.user_id),
        ]

    def state_change_records(
        self,
        user: UserState,
        admin: UserState,
        origin: Origin,
        action: str,
        fields: tuple[tuple[str, object], ...],
        old: str,
        new: str,
        signature_ids: tuple[str, ...],
        reason: str,
    ) -> list[Record]:
        return [
            UserUpdate(user.user_id, fields),
            AuditEntry(
                action,
                "done",
                admin.user_id,
                admin.full_name,
                origin,
                target=f"user:{user.user_id}",
                old_value=old,
                new_value=new,
                reason=reason,
                signature_ids=signature_ids,
            ),
            SecurityEntry(action, user.user_id, origin, actor_id=admin.user_id),
        ]

    async def create_first_admin(
        self, user_id: str, full_name: str, temporary: str, origin: Origin
    ) -> None:
        """``hmi init``: the first administrator, audited as created by the system itself."""
        records = await self.new_user_records(
            user_id,
            full_name,
            ("admin",),
            temporary,
            "system",
            "Custos (hmi init)",
            origin,
            reason="initial administrator",
        )
        records.append(SecurityEntry("data_directory_created", None, origin, actor_id="system"))
        await self.identity.recorder.commit(records)

    def _admin(self, session: Session) -> UserState:
        return self.identity.require_permission(session, ADMIN_PERMISSION).user

    async def add_user(
        self,
        session: Session,
        credentials: Credentials,
        user_id: str,
        full_name: str,
        roles: tuple[str, ...],
        reason: str,
    ) -> str:
        """Create an account; returns its temporary password (shown once)."""
        admin = self._admin(session)
        temporary = temporary_password(self.identity.policy, user_id)
        request = SignatureRequest(
            "add_user",
            f"user:{user_id}",
            ADMIN_MEANING,
            reason,
            new_value=f"{full_name.strip()}; roles={','.join(roles)}",
        )
        self.esign.check_request(request)
        records = await self.new_user_records(
            user_id,
            full_name,
            roles,
            temporary,
            admin.user_id,
            admin.full_name,
            session.origin,
            reason=reason,
        )
        await self._signed_with_ids(session, credentials, request, records)
        return temporary

    async def _signed_with_ids(
        self,
        session: Session,
        credentials: Credentials,
        request: SignatureRequest,
        records: list[Record],
    ) -> None:
        signature, entry = await self.esign.sign(
            session,
            request,
            credentials.password,
            permission=ADMIN_PERMISSION,
            user_id=credentials.user_id,
        )
        stamped = [
            _with_signature(r, signature.signature_id) if isinstance(r, AuditEntry) else r
            for r in records
        ]
        await self.identity.recorder.commit([entry, *stamped])

    async def reset_password(
        self, session: Session, credentials: Credentials, user_id: str, reason: str
    ) -> str:
        admin = self._admin(session)
        user = await self.identity.get_existing(user_id)
        if not user.active:
            raise HmiError(f"{user_id} is deactivated; a deactivated account gets no password.")
        temporary = temporary_password(self.identity.policy, user_id)
        request = SignatureRequest("reset_password", f"user:{user_id}", ADMIN_MEANING, reason)
        self.esign.check_request(request)
        records = await self.reset_password_records(
            user, temporary, admin, session.origin, (), reason
        )
        await self._signed_with_ids(session, credentials, request, records)
        await self.identity.forget_sessions_of(user_id, "password_reset")
        return temporary

    async def _change_state(
        self,
        session: Session,
        credentials: Credentials,
        admin: UserState,
        user: UserState,
        action: str,
        fields: tuple[tuple[str, object], ...],
        old: str,
        new: str,
        reason: str,
    ) -> None:
        """Sign exactly the change (action, account, old → new) and record it with the update."""
        request = SignatureRequest(
            action, f"user:{user.user_id}", ADMIN_MEANING, reason, old_value=old, new_value=new
        )
        self.esign.check_request(request)
        records = self.state_change_records(
            user, admin, session.origin, action, fields, old, new, (), reason
        )
        await self._signed_with_ids(session, credentials, request, records)

    async def deactivate(
        self, session: Session, credentials: Credentials, user_id: str, reason: str
    ) -> None:
        admin = self._admin(session)
        user = await self.identity.get_existing(user_id)
        if user.user_id == admin.user_id:
            raise HmiError("Administrators cannot deactivate their own account.")
        if not user.active:
            raise HmiError(f"{user_id} is already deactivated.")
        fields = (("active", False), ("deactivated_at", self.identity.clock.now()))
        await self._change_state(
            session,
            credentials,
            admin,
            user,
            "deactivate_user",
            fields,
            "active",
            "deactivated",
            reason,
        )
        await self.identity.forget_sessions_of(user_id, "account_deactivated")

    async def unlock(
        self, session: Session, credentials: Credentials, user_id: str, reason: str
    ) -> None:
        admin = self._admin(session)
        user = await self.identity.get_existing(user_id)
        if not user.locked:
            raise HmiError(f"{user_id} is not locked.")
        fields = (("locked", False), ("failed_attempts", 0))
        await self._change_state(
            session, credentials, admin, user, "unlock_user", fields, "locked", "unlocked", reason
        )

    async def set_roles(
        self,
        session: Session,
        credentials: Credentials,
        user_id: str,
        roles: tuple[str, ...],
        reason: str,
    ) -> None:
        admin = self._admin(session)
        user = await self.identity.get_existing(user_id)
        check_roles(roles)
        if user.user_id == admin.user_id and "admin" not in roles:
            raise HmiError("Administrators cannot remove their own admin role.")
        old, new = ",".join(user.roles), ",".join(roles)
        await self._change_state(
            session, credentials, admin, user, "set_roles", (("roles", new),), old, new, reason
        )


def _with_signature(entry: AuditEntry, signature_id: str) -> AuditEntry:
    return replace(entry, signature_ids=(*entry.signature_ids, signature_id))
