"""The store side of the core's ports: writes core records, reads accounts.

``StoreRecorder.commit`` turns a list of core records into one writer job,
so they are committed together before the caller goes on. Reads run in a
worker thread on their own cursor, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from hmi.core.records import (
    AuditEntry,
    ConfigVersionEntry,
    NewUser,
    NotificationEntry,
    PasswordSet,
    QueryEntry,
    Record,
    SecurityEntry,
    SessionRecord,
    SignatureEntry,
    UserState,
    UserUpdate,
)
from hmi.store.config_versions import version_row
from hmi.store.db import Store
from hmi.store.tables import AUDIT, CONFIG_VERSIONS, ESIGNATURES, QA_QUERIES, SECURITY
from hmi.store.writetx import WriteTx

_UPDATABLE = {
    "full_name",
    "roles",
    "active",
    "locked",
    "failed_attempts",
    "must_change_password",
    "password_changed_at",
    "deactivated_at",
}


def apply_record(tx: WriteTx, record: Record) -> object:
    if isinstance(record, AuditEntry):
        return tx.append(
            AUDIT,
            {
                "actor_id": record.actor_id,
                "actor_name": record.actor_name,
                "terminal_id": record.origin.terminal_id,
                "source": record.origin.source,
                "action": record.action,
                "target": record.target,
                "old_value": record.old_value,
                "new_value": record.new_value,
                "units": record.units,
                "reason": record.reason,
                "outcome": record.outcome,
                "signature_ids": ",".join(record.signature_ids) or None,
                "run_id": record.run_id,
                "step": record.step,
                "detail": record.detail,
            },
        ).seq
    if isinstance(record, SecurityEntry):
        return tx.append(
            SECURITY,
            {
                "event": record.event,
                "user_id": record.user_id,
                "actor_id": record.actor_id,
                "terminal_id": record.origin.terminal_id,
                "source": record.origin.source,
                "session_id": record.session_id,
                "detail": record.detail,
            },
        ).seq
    if isinstance(record, SignatureEntry):
        return tx.append(
            ESIGNATURES,
            {
                "ts": record.signed_at,
                "signature_id": record.signature_id,
                "signer_id": record.signer_id,
                "signer_name": record.signer_name,
                "meaning": record.meaning,
                "reason": record.reason,
                "content": record.content,
                "content_digest": record.content_digest,
                "terminal_id": record.origin.terminal_id,
                "source": record.origin.source,
                "auth_mode": record.auth_mode,
                "session_id": record.session_id,
            },
        ).seq
    if isinstance(record, QueryEntry):
        return tx.append(
            QA_QUERIES,
            {
                "actor_id": record.actor_id,
                "actor_name": record.actor_name,
                "terminal_id": record.origin.terminal_id,
                "source": record.origin.source,
                "sql_text": record.sql_text,
                "outcome": record.outcome,
                "row_count": record.row_count,
                "reason": record.reason,
            },
        ).seq
    if isinstance(record, ConfigVersionEntry):
        return tx.append(CONFIG_VERSIONS, version_row(record)).seq
    if isinstance(record, NewUser):
        u = record.user
        tx.execute(
            "INSERT INTO user_accounts (user_id, full_name, roles, active, locked, "
            "failed_attempts, "
            "must_change_password, password_changed_at, created_at, created_by, deactivated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                u.user_id,
                u.full_name,
                ",".join(u.roles),
                u.active,
                u.locked,
                u.failed_attempts,
                u.must_change_password,
                u.password_changed_at,
                u.created_at,
                u.created_by,
                u.deactivated_at,
            ],
        )
        return None
    if isinstance(record, UserUpdate):
        names = [name for name, _ in record.fields]
        bad = set(names) - _UPDATABLE
        if bad:
            raise ValueError(f"user_accounts fields {sorted(bad)} cannot be updated")
        assignments = ", ".join(f"{name} = ?" for name in names)
        tx.execute(
            f"UPDATE user_accounts SET {assignments} WHERE user_id = ?",
            [value for _, value in record.fields] + [record.user_id],
        )
        return None
    if isinstance(record, PasswordSet):
        tx.execute(
            "INSERT INTO password_hashes (user_id, n, hash, set_at, temporary) "
            "SELECT ?, coalesce(max(n), 0) + 1, ?, ?, ? FROM password_hashes WHERE user_id = ?",
            [record.user_id, record.password_hash, record.set_at, record.temporary, record.user_id],
        )
        return None
    if isinstance(record, SessionRecord):
        # ON CONFLICT is not available on tables with triggers: update, else insert.
        exists = tx.execute(
            "SELECT count(*) FROM sessions WHERE session_id = ?", [record.session_id]
        )
        if exists[0][0]:
            tx.execute(
                "UPDATE sessions SET last_activity = ?, last_full_auth = ?, ended_at = ?, "
                "end_reason = ? WHERE session_id = ?",
                [
                    record.last_activity,
                    record.last_full_auth,
                    record.ended_at,
                    record.end_reason,
                    record.session_id,
                ],
            )
        else:
            tx.execute(
                "INSERT INTO sessions (session_id, user_id, terminal_id, source, started_at, "
                "last_activity, last_full_auth, ended_at, end_reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.session_id,
                    record.user_id,
                    record.origin.terminal_id,
                    record.origin.source,
                    record.started_at,
                    record.last_activity,
                    record.last_full_auth,
                    record.ended_at,
                    record.end_reason,
                ],
            )
        return None
    if isinstance(record, NotificationEntry):
        rows = tx.execute(
            "INSERT INTO notifications (id, ts, audience, kind, message, subject) "
            "SELECT coalesce(max(id), 0) + 1, ?, ?, ?, ?, ? FROM notifications RETURNING id",
            [tx.now, record.audience, record.kind, record.message, record.subject],
        )
        return rows[0][0] if rows else None
    raise TypeError(f"cannot record {type(record).__name__}")


def _user(row: Sequence[Any]) -> UserState:
    return UserState(
        user_id=row[0],
        full_name=row[1],
        roles=tuple(filter(None, str(row[2]).split(","))),
        active=bool(row[3]),
        locked=bool(row[4]),
        failed_attempts=int(row[5]),
        must_change_password=bool(row[6]),
        password_changed_at=row[7],
        created_at=row[8],
        created_by=row[9],
        deactivated_at=row[10],
    )


_USER_COLUMNS = (
    "user_id, full_name, roles, active, locked, failed_attempts, must_change_password, "
    "password_changed_at, created_at, created_by, deactivated_at"
)


class StoreRecorder:
    """Implements the core's ``Recorder`` and ``IdentityReader`` ports on a ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def commit_now(self, records: Sequence[Record]) -> list[object]:
        return self.store.write(lambda tx: [apply_record(tx, r) for r in records])

    def commit_soon(self, records: Sequence[Record]) -> Future[list[object]]:
        """Queue ``records`` without waiting (from the scan path, which must never block)."""
        batch = list(records)
        return self.store.submit(lambda tx: [apply_record(tx, r) for r in batch])

    async def commit(self, records: Sequence[Record]) -> list[object]:
        batch = list(records)
        return await self.store.awrite(lambda tx: [apply_record(tx, r) for r in batch])

    async def _query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.store.query, sql, params)

    async def get_user(self, user_id: str) -> UserState | None:
        rows = await self._query(
            f"SELECT {_USER_COLUMNS} FROM user_accounts WHERE user_id = ?", [user_id]
        )
        return _user(rows[0]) if rows else None

    async def user_by_name(self, full_name: str) -> UserState | None:
        rows = await self._query(
            f"SELECT {_USER_COLUMNS} FROM user_accounts WHERE lower(full_name) = lower(?)",
            [full_name],
        )
        return _user(rows[0]) if rows else None

    async def list_users(self) -> list[UserState]:
        rows = await self._query(f"SELECT {_USER_COLUMNS} FROM user_accounts ORDER BY user_id")
        return [_user(r) for r in rows]

    async def password_hashes(self, user_id: str, limit: int) -> list[str]:
        rows = await self._query(
            "SELECT hash FROM password_hashes WHERE user_id = ? ORDER BY n DESC LIMIT ?",
            [user_id, limit],
        )
        return [str(r[0]) for r in rows]

    async def notifications(self, audience: str, limit: int = 50) -> list[tuple[Any, ...]]:
        return await self._query(
            "SELECT id, ts, kind, message, subject, acknowledged_by FROM notifications "
            "WHERE audience = ? ORDER BY id DESC LIMIT ?",
            [audience, limit],
        )
