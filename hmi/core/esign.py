"""Electronic signatures (21 CFR 11.50, 11.70, 11.200).

A signature is bound to exactly what the person was shown: the request's
canonical content (action, target, old → new value, units, reason, meaning,
procedure step) is hashed, and the signature record stores that digest and
the content itself, chained like every record. Checking a signature against
any other content fails.

Components (11.200(a)(1)): the first signing in a session needs user ID and
password; later signings in the same continuous session need the password
only, until the signing window since the last full authentication passes.
A second signer (witness or approver) always gives both.
"""

from __future__ import annotations

import enum
import hmac
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from hmi.core.audit import canonical_json, content_digest
from hmi.core.clock import Clock, local_display
from hmi.core.config import SecurityPolicy
from hmi.core.errors import PermissionDenied, SignatureError
from hmi.core.identity import IdentityService, Session
from hmi.core.records import Origin, SignatureEntry, UserState


class SigningMode(enum.Enum):
    FULL = "full"
    """User ID and password."""
    PASSWORD_ONLY = "password"  # noqa: S105 - a mode name, not a password


@dataclass(frozen=True)
class SignatureRequest:
    """Exactly what the signature dialog shows, and so exactly what is signed."""

    action: str
    target: str
    meaning: str
    reason: str
    old_value: str | None = None
    new_value: str | None = None
    units: str | None = None
    run_id: str | None = None
    step: str | None = None

    def content(self) -> dict[str, str | None]:
        return asdict(self)

    def canonical(self) -> str:
        return canonical_json(self.content())

    def digest(self) -> str:
        return content_digest(self.content())


@dataclass(frozen=True)
class Signature:
    """A signature as recorded, with what 11.50 requires to be shown with it."""

    signature_id: str
    signer_id: str
    signer_name: str
    meaning: str
    reason: str
    signed_at: datetime
    content_digest: str
    auth_mode: str

    def manifestation(self) -> str:
        """Printed name, date and time with offset, meaning: shown on screen and in print."""
        when = local_display(self.signed_at)
        return f"{self.signer_name} ({self.signer_id}), {when}, {self.meaning}"

    def binds(self, request: SignatureRequest) -> bool:
        """True only for the very content that was signed."""
        return hmac.compare_digest(self.content_digest, request.digest())


class ESignService:
    def __init__(self, identity: IdentityService, policy: SecurityPolicy, clock: Clock) -> None:
        self.identity = identity
        self.policy = policy
        self.clock = clock

    def mode_for(self, session: Session) -> SigningMode:
        """What the next signature in this session must give (the dialog asks for it)."""
        if not session.signed_in_session or session.last_full_auth is None:
            return SigningMode.FULL
        window = timedelta(seconds=self.policy.signature.signing_window_s)
        if self.clock.now() - session.last_full_auth > window:
            return SigningMode.FULL
        return SigningMode.PASSWORD_ONLY

    def check_request(self, request: SignatureRequest) -> None:
        if request.meaning not in self.policy.signature.meanings:
            raise SignatureError(
                f"{request.meaning!r} is not a signature meaning; meanings are "
                f"{', '.join(self.policy.signature.meanings)}."
            )
        if not request.reason.strip():
            raise SignatureError("A reason is required for every signature.")

    async def sign(
        self,
        session: Session,
        request: SignatureRequest,
        password: str,
        *,
        permission: str,
        user_id: str | None = None,
    ) -> tuple[Signature, SignatureEntry]:
        """The session's user signs ``request``.

        The permission is checked before the password (SIG-4). Returns the
        signature and the record to commit with the action it signs.
        """
        current = self.identity.require_permission(session, permission)
        self.check_request(request)
        mode = self.mode_for(current)
        if mode is SigningMode.FULL:
            if user_id is None:
                raise SignatureError("Enter your user ID and password to sign.")
            if user_id != current.user_id:
                raise SignatureError(
                    "Only the logged-in user can sign here; a second person signs as witness."
                )
        user = await self.identity.authenticate(
            current.user_id, password, current.origin, purpose="sign"
        )
        now = self.clock.now()
        current.signed_in_session = True
        if mode is SigningMode.FULL:
            current.last_full_auth = now
        current.last_activity = now
        return self._make(user, request, current.origin, mode, current.session_id, now)

    async def witness(
        self,
        request: SignatureRequest,
        user_id: str,
        password: str,
        origin: Origin,
        *,
        permission: str,
        not_user: str | None,
    ) -> tuple[Signature, SignatureEntry]:
        """A second person signs (witness here, or approver): always user ID and password."""
        self.check_request(request)
        if not_user is not None and user_id == not_user:
            raise SignatureError("The second signature must be given by a different person.")
        user = await self.identity.authenticate(user_id, password, origin, purpose="sign")
        if not self.policy.permitted(user.roles, permission):
            raise PermissionDenied(
                f"{user.full_name} may not sign this: {permission.replace('_', ' ')} is needed."
            )
        return self._make(user, request, origin, SigningMode.FULL, None, self.clock.now())

    @staticmethod
    def _make(
        user: UserState,
        request: SignatureRequest,
        origin: Origin,
        mode: SigningMode,
        session_id: str | None,
        now: datetime,
    ) -> tuple[Signature, SignatureEntry]:
        signature = Signature(
            signature_id=uuid.uuid4().hex,
            signer_id=user.user_id,
            signer_name=user.full_name,
            meaning=request.meaning,
            reason=request.reason,
            signed_at=now,
            content_digest=request.digest(),
            auth_mode=mode.value,
        )
        entry = SignatureEntry(
            signature_id=signature.signature_id,
            signer_id=user.user_id,
            signer_name=user.full_name,
            meaning=request.meaning,
            reason=request.reason,
            content=request.canonical(),
            content_digest=signature.content_digest,
            origin=origin,
            auth_mode=mode.value,
            session_id=session_id,
            signed_at=now,
        )
        return signature, entry
