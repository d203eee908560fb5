"""Plain records the core asks the store to write, all in one transaction.

The core decides *what* is recorded; the store decides *how*. A core
operation hands the recorder a list of these, and the store writes them in
one transaction that is committed before the call returns: a password
change, its audit row and its security event stand or fall together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Origin:
    """Where an action came from: the terminal's identity and the source address."""

    terminal_id: str
    source: str


@dataclass(frozen=True)
class AuditEntry:
    action: str
    outcome: str
    """``done``, ``refused`` or ``failed``."""
    actor_id: str | None
    actor_name: str | None
    origin: Origin
    target: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    units: str | None = None
    reason: str | None = None
    signature_ids: tuple[str, ...] = ()
    run_id: str | None = None
    step: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class SecurityEntry:
    event: str
    user_id: str | None
    origin: Origin
    actor_id: str | None = None
    session_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class SignatureEntry:
    signature_id: str
    signer_id: str
    signer_name: str
    meaning: str
    reason: str
    content: str
    """Canonical JSON of exactly what was signed."""
    content_digest: str
    origin: Origin
    auth_mode: str
    session_id: str | None
    signed_at: datetime


@dataclass(frozen=True)
class QueryEntry:
    actor_id: str
    actor_name: str
    origin: Origin
    sql_text: str
    outcome: str
    row_count: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class UserState:
    """An account as stored (never the password)."""

    user_id: str
    full_name: str
    roles: tuple[str, ...]
    active: bool
    locked: bool
    failed_attempts: int
    must_change_password: bool
    password_changed_at: datetime | None
    created_at: datetime
    created_by: str
    deactivated_at: datetime | None = None


@dataclass(frozen=True)
class NewUser:
    user: UserState


@dataclass(frozen=True)
class UserUpdate:
    """Set the named fields of an existing account."""

    user_id: str
    fields: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class PasswordSet:
    user_id: str
    password_hash: str
    temporary: bool
    set_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    user_id: str
    origin: Origin
    started_at: datetime
    last_activity: datetime
    last_full_auth: datetime | None
    ended_at: datetime | None = None
    end_reason: str | None = None


@dataclass(frozen=True)
class NotificationEntry:
    audience: str
    """A role (e.g. ``admin``) whose terminals show it, or ``user:ID`` for one user."""
    kind: str
    message: str
    subject: str | None = None


@dataclass(frozen=True)
class ConfigVersionEntry:
    """One event in a configuration version's life (``hmi.core.config_versions``)."""

    version: int
    event: str
    """``baseline``, ``proposed``, ``signed``, ``approved`` or ``rejected``."""
    actor_id: str | None
    actor_name: str | None
    origin: Origin
    config_sha256: str
    base_version: int | None = None
    restores_version: int | None = None
    files_json: str | None = None
    changed_files: str | None = None
    diff: str | None = None
    required: str | None = None
    actor_role: str | None = None
    reason: str | None = None
    signature_ids: tuple[str, ...] = ()
    detail: str | None = None
    seq: int | None = None
    """Assigned by the store; set on entries read back."""
    ts: datetime | None = None


Record = (
    AuditEntry
    | SecurityEntry
    | SignatureEntry
    | QueryEntry
    | NewUser
    | UserUpdate
    | PasswordSet
    | SessionRecord
    | NotificationEntry
    | ConfigVersionEntry
)
