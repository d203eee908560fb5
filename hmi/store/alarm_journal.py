"""The store side of the alarm journal: transitions as chained rows.

Transitions from the scan path are queued (``record_soon``): the writer
thread groups them with whatever else is waiting, so a flood of alarms costs
a few transactions, not one per alarm, and the event loop never waits for
the disk. A queued write that fails is logged loudly and kept for the next
attempt, because a transition that was shown but not journaled is exactly
what an inspector looks for. Operator actions are committed durably
(``commit``) together with their audit and signature records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from hmi.core.alarms import AlarmTransition
from hmi.core.records import Record
from hmi.store.db import Store
from hmi.store.recorder import apply_record
from hmi.store.tables import ALARM_JOURNAL
from hmi.store.writetx import WriteTx

log = logging.getLogger(__name__)


def journal_row(t: AlarmTransition) -> dict[str, object]:
    a = t.actor
    return {
        "ts": t.time,
        "alarm_id": t.alarm_id,
        "tag": t.tag,
        "alarm_kind": t.kind,
        "event": t.event,
        "from_state": t.from_state.value,
        "to_state": t.to_state.value,
        "value": t.value,
        "limit_name": t.limit_name,
        "limit_value": t.limit_value,
        "priority": t.priority,
        "message": t.message,
        "actor_id": a.actor_id,
        "actor_name": a.actor_name,
        "terminal_id": a.terminal_id,
        "source": a.source,
        "comment": a.comment,
        "signature_ids": ",".join(a.signature_ids) or None,
        "shelved_until": t.shelved_until,
    }


class StoreAlarmJournal:
    """Implements ``hmi.core.alarms.AlarmJournal`` on a ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._retry: list[AlarmTransition] = []
        self._in_flight: set[Future[None]] = set()
        self.failures = 0

    def record_soon(self, transitions: Sequence[AlarmTransition]) -> None:
        with self._lock:
            batch, self._retry = [*self._retry, *transitions], []
        future = self.store.submit(self._job(batch, ()))
        self._in_flight.add(future)
        future.add_done_callback(lambda f: self._done(f, batch))

    @staticmethod
    def _job(
        transitions: Sequence[AlarmTransition], records: Sequence[Record]
    ) -> Callable[[WriteTx], None]:
        def job(tx: WriteTx) -> None:
            for t in transitions:
                tx.append(ALARM_JOURNAL, journal_row(t))
            for r in records:
                apply_record(tx, r)

        return job

    def _done(self, future: Future[None], batch: list[AlarmTransition]) -> None:
        self._in_flight.discard(future)
        exc = future.exception()
        if exc is not None:
            self.failures += 1
            log.error("alarm journal: %d transition(s) not written yet: %s", len(batch), exc)
            with self._lock:
                self._retry = batch + self._retry

    async def commit(
        self, transitions: Sequence[AlarmTransition], records: Sequence[Record]
    ) -> None:
        with self._lock:
            pending, self._retry = [*self._retry, *transitions], []
        try:
            await self.store.awrite(self._job(pending, records))
        except BaseException:
            with self._lock:
                self._retry = [t for t in pending if t not in transitions] + self._retry
            raise

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for queued transitions (at shutdown, in a thread; blocks)."""
        for future in list(self._in_flight):
            future.exception(timeout=timeout)
        with self._lock:
            retry, self._retry = self._retry, []
        if retry:
            self.store.write(self._job(retry, ()), timeout=timeout)
