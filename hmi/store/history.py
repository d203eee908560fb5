"""Tag history (SUP-5): every logged change, written in chained batches.

Values arrive far faster than regulated records (a plant logs thousands a
second), so a transaction or an HMAC per value is out of the question. The
``HistoryWriter`` buffers changes and flushes them by count and by age; each
batch is ONE Arrow insert plus one chained row in ``tag_history_batch_records``
(``HISTORY_BATCHES``) holding the batch's first/last time, row count and the
SHA-256 of its rows in canonical form, committed in the same transaction.
The chain and the signed checkpoints vouch for the batch rows; the batch rows
vouch for the values; ``verify_history`` recomputes each batch's SHA-256 in
SQL. The canonical form and value storage are described in
``hmi.store.history_batch``.

Backpressure: ``record`` never blocks its caller (the scanner, on the event
loop). The buffer is bounded by ``max_queue``; when the writer falls behind,
new values are refused, counted per tag, and the next batch carries one BAD
``system:history`` row per affected tag saying how many values between which
times were not recorded, plus their total in the chained ``lost_values``. A
batch the store refuses (disk full) is accounted the same way. A loss is
thus itself a record, never silent; ``on_loss`` lets the runtime raise an
event for it too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hmi.core.tags import TagChange
from hmi.store.history_batch import Loss, prepare_batch, verify_history, write_batch

if TYPE_CHECKING:
    from hmi.store.db import Store

__all__ = ["HistoryStats", "HistoryWriter", "Loss", "prepare_batch", "verify_history"]
__all__ += ["write_batch"]

log = logging.getLogger(__name__)
_VALUE_TYPES = (bool, int, float, str)
_MAX_CAUSE = 400


def _check(change: TagChange) -> None:
    value, source = change.value, change.source_time
    if change.server_time.tzinfo is None or (source is not None and source.tzinfo is None):
        raise ValueError(f"{change.tag}: history timestamps must be timezone-aware (UTC)")
    if value is not None and not isinstance(value, _VALUE_TYPES):
        raise TypeError(f"{change.tag}: cannot store a {type(value).__name__} value")


@dataclass(frozen=True)
class HistoryStats:
    queued: int
    """Values accepted and not yet committed (in the buffer or in a batch being written)."""
    flushed: int
    """Values committed."""
    batches: int
    max_queue_depth: int
    """The most values ever waiting in the buffer; never above ``max_queue``."""
    lost: int
    """Values not recorded (queue full, or their batch failed)."""
    loss_recorded: int
    """Of ``lost``, how many are already stated in a committed batch."""
    failed_batches: int


class HistoryWriter:
    """Buffers tag changes and writes them in chained batches through the store's writer.

    A flush happens when ``max_rows`` values are waiting, when the oldest has
    waited ``max_delay_s``, on ``flush()`` and on ``close()``. One batch is
    prepared (canonical rows, digests, Arrow columns) on this writer's own
    thread while the previous one commits, so the store's writer thread only
    inserts. See the module docstring for what happens when it falls behind.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_rows: int = 5000,
        max_delay_s: float = 1.0,
        max_queue: int = 200_000,
        on_loss: Callable[[list[Loss]], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        if max_rows < 1 or max_queue < max_rows or max_delay_s <= 0:
            raise ValueError("need max_rows >= 1, max_queue >= max_rows and max_delay_s > 0")
        self._store = store
        self.max_rows, self.max_delay_s, self.max_queue = max_rows, max_delay_s, max_queue
        self.on_loss, self.on_error = on_loss, on_error
        self._cond = threading.Condition(threading.Lock())
        self._buffer: list[TagChange] = []
        self._oldest = 0.0
        self._losses: dict[str, Loss] = {}
        self._accepted = self._done = 0
        self._flushed = self._batches = self._max_depth = 0
        self._lost = self._loss_recorded = self._failed = 0
        self._flush_requested = self._stopping = self._closed = False
        self._thread = threading.Thread(target=self._run, name="custos-history", daemon=True)
        self._thread.start()

    # -- the caller's side ---------------------------------------------------------

    def record(self, change: TagChange) -> bool:
        """Queue ``change``; False if it was refused (and counted as a loss) instead.

        Raises for a change that could never be stored (a naive timestamp, a value
        that is not bool, int, float or str): that is a bug in the caller, and
        accepting it would fail a whole batch later.
        """
        _check(change)
        with self._cond:
            n = len(self._buffer)
            if n >= self.max_queue or self._closed:
                self._refuse((change,))
                return False
            self._buffer.append(change)
            self._accepted += 1
            self._queued(n, n + 1)
        return True

    def record_many(self, changes: Sequence[TagChange]) -> int:
        """Queue a poll's worth of changes under one lock; returns how many were accepted.

        What does not fit is refused and counted as lost, as with ``record``.
        """
        for change in changes:
            _check(change)
        with self._cond:
            n = len(self._buffer)
            room = 0 if self._closed else max(0, self.max_queue - n)
            accepted = changes[:room]
            if len(accepted) < len(changes):
                self._refuse(changes[room:])
            if accepted:
                self._buffer.extend(accepted)
                self._accepted += len(accepted)
                self._queued(n, n + len(accepted))
        return len(accepted)

    def _queued(self, before: int, after: int) -> None:
        """Bookkeeping after the buffer grew from ``before`` to ``after`` (lock held)."""
        if after > self._max_depth:
            self._max_depth = after
        if before == 0:
            self._oldest = time.monotonic()
            self._cond.notify()
        elif before < self.max_rows <= after:
            self._cond.notify()

    def _refuse(self, changes: Sequence[TagChange]) -> None:
        cause = "history is closed" if self._closed else "history writer behind, queue full"
        for c in changes:
            self._add_loss(c.tag, 1, c.server_time, c.server_time, cause)

    @property
    def stats(self) -> HistoryStats:
        with self._cond:
            return HistoryStats(
                queued=self._accepted - self._done,
                flushed=self._flushed,
                batches=self._batches,
                max_queue_depth=self._max_depth,
                lost=self._lost,
                loss_recorded=self._loss_recorded,
                failed_batches=self._failed,
            )

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything recorded so far; True once it (and any loss) is committed.

        Blocks until then: call it from a thread (``asyncio.to_thread``), not the event loop.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            target, lost, failed = self._accepted, self._lost, self._failed
            self._flush_requested = True
            self._cond.notify_all()
            while self._done < target or self._loss_recorded < lost:
                left = deadline - time.monotonic()
                if left <= 0 or self._failed != failed or not self._thread.is_alive():
                    return False
                self._cond.wait(left)
            return self._failed == failed

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything and stop; later values are refused (and counted as lost)."""
        with self._cond:
            if self._closed:
                return
            self._closed = self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._losses:
            log.error("history closed with %d value(s) not recorded", self.stats.lost)

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the flusher thread -----------------------------------------------------------

    def _add_loss(self, tag: str, count: int, first: datetime, last: datetime, cause: str) -> None:
        self._lost += count
        old = self._losses.get(tag)
        if old is not None:
            count, first, last = (
                old.count + count,
                min(old.first_time, first),
                max(old.last_time, last),
            )
            cause = old.cause if cause in old.cause else f"{old.cause}; {cause}"[:_MAX_CAUSE]
        self._losses[tag] = Loss(tag, count, first, last, cause)

    def _take(self, block: bool) -> tuple[list[TagChange], list[Loss]] | None:
        with self._cond:
            while True:
                pending = bool(self._buffer or self._losses)
                age = time.monotonic() - self._oldest
                if pending and (
                    len(self._buffer) >= self.max_rows
                    or age >= self.max_delay_s
                    or self._flush_requested
                    or self._stopping
                ):
                    break
                if not block or (self._stopping and not pending):
                    return None
                self._cond.wait(self.max_delay_s - age if pending else None)
            take = self._buffer[: self.max_rows]
            del self._buffer[: self.max_rows]
            losses = list(self._losses.values())
            self._losses.clear()
            if not self._buffer:
                self._flush_requested = False
                self._oldest = time.monotonic()
            return take, losses

    def _submit(self, take: list[TagChange], losses: list[Loss]) -> _InFlight:
        try:
            batch = prepare_batch(take, losses)
            future: Future[Any] = self._store.submit(lambda tx: batch.write(tx, self._store))
        except Exception as exc:
            future = Future()
            future.set_exception(exc)
        return _InFlight(future, take, losses)

    def _finish(self, flight: _InFlight) -> None:
        try:
            flight.future.result()
        except Exception as exc:
            log.error("history batch of %d value(s) not written: %s", len(flight.take), exc)
            with self._cond:
                self._failed += 1
                cause = f"their batch could not be written ({exc})"
                for c in flight.take:
                    self._add_loss(c.tag, 1, c.server_time, c.server_time, cause)
                for loss in flight.losses:
                    self._lost -= loss.count  # counted already; carried to the next batch
                    self._add_loss(
                        loss.tag, loss.count, loss.first_time, loss.last_time, loss.cause
                    )
                self._done += len(flight.take)
                self._cond.notify_all()
            self._call(self.on_error, exc)
            return
        with self._cond:
            self._flushed += len(flight.take)
            self._batches += 1
            self._loss_recorded += sum(loss.count for loss in flight.losses)
            self._done += len(flight.take)
            self._cond.notify_all()
        if flight.losses:
            self._call(self.on_loss, flight.losses)

    @staticmethod
    def _call(callback: Callable[[Any], None] | None, arg: object) -> None:
        if callback is None:
            return
        try:
            callback(arg)
        except Exception:
            log.exception("history callback %r failed", callback)

    def _abandon(self) -> None:
        """On a failed close: what is still buffered is counted as lost, not dropped silently."""
        with self._cond:
            left, self._buffer = self._buffer, []
            for c in left:
                self._add_loss(c.tag, 1, c.server_time, c.server_time, "the store failed at close")
            self._done += len(left)
            self._cond.notify_all()

    def _run(self) -> None:
        """Prepare the next batch while the previous one commits; at most two in flight."""
        previous: _InFlight | None = None
        while True:
            taken = self._take(block=previous is None)
            current = self._submit(*taken) if taken is not None else None
            if previous is not None:
                failures = self._failed
                self._finish(previous)
                if self._failed != failures:
                    if self._stopping:
                        if current is not None:
                            self._finish(current)
                        self._abandon()
                        return
                    time.sleep(min(self.max_delay_s, 1.0))  # a failing store: no hot retry loop
            previous = current
            if previous is None and taken is None and self._stopping:
                with self._cond:
                    if not self._buffer and not self._losses:
                        return


@dataclass
class _InFlight:
    future: Future[Any]
    take: list[TagChange]
    losses: list[Loss]
