"""What the core needs from the outside world, as Protocols.

The store, the password hasher and the notification hook implement these;
the core never imports them, so it can be tested and reasoned about alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hmi.core.records import NotificationEntry, Record, UserState
from hmi.core.reports import ReportOutcome, ReportRequest


class Recorder(Protocol):
    async def commit(self, records: Sequence[Record]) -> list[object]:
        """Write all ``records`` in one transaction; return once durable.

        Returns, per record, what the store assigned (e.g. a sequence number),
        or ``None``. Raises ``RecordError`` if nothing could be written.
        """
        ...


class IdentityReader(Protocol):
    async def get_user(self, user_id: str) -> UserState | None: ...

    async def list_users(self) -> list[UserState]: ...

    async def password_hashes(self, user_id: str, limit: int) -> list[str]:
        """The user's password hashes, newest (current) first."""
        ...

    async def user_by_name(self, full_name: str) -> UserState | None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    async def burn(self, password: str) -> None:
        """Spend the time of one verification (for unknown user IDs)."""
        ...


class Notifier(Protocol):
    async def notify(self, notification: NotificationEntry) -> None:
        """Deliver through the configured external channel (e.g. mail); never raises."""
        ...


class ReportMaker(Protocol):
    async def make(
        self,
        request: ReportRequest,
        by: tuple[str, str],
        at: datetime,
        out: str,
        force: bool,
    ) -> ReportOutcome:
        """Read the report's rows, write the file ``out`` and its manifest; return what was
        written. ``by`` is (user ID, printed name). Raises ``HmiError`` naming the problem."""
        ...

    def discard(self, outcome: ReportOutcome) -> None:
        """Remove a written report (its export could not be recorded)."""
        ...
