"""The record store: one writer thread owns the DuckDB connection.

Every write is a *job* (a function of a ``WriteTx``) put on a queue. The
writer thread takes whatever jobs are waiting, runs them in one transaction
and commits once (group commit): under load many callers share one fsync,
and each caller is released only after its own rows are durable. A job that
fails is isolated by re-running the batch one job at a time, so one bad
request never loses another's record.

Chained appends are buffered inside the transaction and inserted per table
in one statement (a parameterised row for one, an Arrow batch for many),
because DuckDB's per-statement cost, not the fsync, dominates small inserts.

Readers never use the writer's connection: ``reader()`` gives each caller its
own cursor on the same database instance.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from hmi.core.audit import Kind, genesis, key_check
from hmi.core.clock import Clock, SystemClock
from hmi.core.errors import DataDirectoryError, RecordError
from hmi.store import migrate
from hmi.store.anchors import AnchorLog, Checkpoint, heads_text
from hmi.store.datadir import DataDir
from hmi.store.keys import KeyRing
from hmi.store.tables import CHAINED_TABLES, ChainedTable
from hmi.store.writetx import Appended, Head, WriteTx

__all__ = ["Appended", "Head", "Store", "WriteTx"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 2000


def _open_connection(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DataDirectoryError(
                f"The records database {path} is held by a running Custos runtime. Stop it, "
                "or, if it is `hmi serve`, ask it with --online (for example "
                "`hmi verify --online --data DIR`).",
                title="Database in use",
            ) from exc
        raise DataDirectoryError(f"Cannot open {path}: {exc}") from exc


@dataclass
class _Job:
    fn: Callable[[WriteTx], Any]
    future: Future[Any] = field(default_factory=Future)


@dataclass
class _Exclusive:
    """Work for the writer thread between batches, outside any transaction (a backup)."""

    fn: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any] = field(default_factory=Future)


_STOP = object()


class Store:
    """An open data directory: writer thread, read cursors, chain heads, checkpoints."""

    def __init__(
        self,
        data_dir: DataDir,
        con: duckdb.DuckDBPyConnection,
        keys: KeyRing,
        clock: Clock,
        *,
        checkpoint_interval: float = 60.0,
    ) -> None:
        self.data_dir = data_dir
        self.keys = keys
        self.clock = clock
        self.checkpoint_interval = checkpoint_interval
        self._con = con
        self._cursor_lock = threading.Lock()
        self.write_connection = con.cursor()
        self.heads: dict[str, Head] = {}
        self._physical: dict[str, list[tuple[str, Kind]]] = {}
        self._load_heads()
        self.anchors = AnchorLog(data_dir.anchors)
        last = self.write_connection.execute(
            "SELECT seq, heads FROM checkpoints ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self._checkpoint_seq = int(last[0]) if last else 0
        # Rows committed after the last checkpoint (e.g. before a crash) are vouched for by
        # a checkpoint on the writer's first tick.
        self._checkpointed_heads = str(last[1]) if last else ""
        unvouched = heads_text(self._head_pairs()) != self._checkpointed_heads
        self._last_checkpoint = clock.monotonic() - (checkpoint_interval if unvouched else 0.0)
        self._unanchored: list[Checkpoint] = self._committed_but_unanchored()
        self.on_anchor_failure: Callable[[Exception], None] | None = None
        if self._unanchored:
            self._anchor()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._submit_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="custos-store-writer", daemon=True)
        self._closed = False
        self._thread.start()

    # -- opening -----------------------------------------------------------

    @classmethod
    def create(
        cls, root: Path, *, clock: Clock | None = None, checkpoint_interval: float = 60.0
    ) -> Store:
        """Create a new data directory: schema, keys and meta; refuses an existing one."""
        data_dir = DataDir(root)
        data_dir.require_new()
        root.mkdir(parents=True, exist_ok=True)
        keys = KeyRing.create(data_dir.keys)
        con = _open_connection(data_dir.database, read_only=False)
        migrate.migrate(con)
        clk = clock or SystemClock()
        con.execute(
            "INSERT INTO schema_meta VALUES ('hmac_key_check', ?), ('checkpoint_key_id', ?), "
            "('created_at', ?)",
            [key_check(keys.hmac_key), keys.key_id, clk.now().isoformat()],
        )
        data_dir.anchors.touch(mode=0o600)
        return cls(data_dir, con, keys, clk, checkpoint_interval=checkpoint_interval)

    @classmethod
    def open(
        cls, root: Path, *, clock: Clock | None = None, checkpoint_interval: float = 60.0
    ) -> Store:
        """Open an existing data directory for writing, applying pending migrations."""
        data_dir = DataDir(root)
        data_dir.require_existing()
        keys = KeyRing.load(data_dir.keys)
        con = _open_connection(data_dir.database, read_only=False)
        try:
            migrate.migrate(con)
            stored = migrate.get_meta(con, "hmac_key_check")
            if stored != key_check(keys.hmac_key):
                raise DataDirectoryError(
                    f"The HMAC key in {data_dir.keys} is not the key these records were written "
                    "with. Restore the right key; nothing was written.",
                    title="Key mismatch",
                )
        except Exception:
            con.close()
            raise
        return cls(
            data_dir, con, keys, clock or SystemClock(), checkpoint_interval=checkpoint_interval
        )

    def _load_heads(self) -> None:
        for name in CHAINED_TABLES:
            row = self.write_connection.execute(
                f"SELECT seq, digest FROM {name} ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is None:
                self.heads[name] = Head(0, genesis(self.keys.hmac_key, name))
            else:
                self.heads[name] = Head(int(row[0]), bytes(row[1]))

    def _committed_but_unanchored(self) -> list[Checkpoint]:
        """Checkpoints newer than the anchor file's last line: the runtime stopped in between.

        Only the tail is copied; a line missing in the middle stays a problem for verify.
        """
        last = self.anchors.last_seq()
        if last is None:
            return []
        rows = self.write_connection.execute(
            "SELECT seq, ts, heads, key_id, signature FROM checkpoints WHERE seq > ? ORDER BY seq",
            [last],
        ).fetchall()
        return [Checkpoint(int(s), ts, str(h), str(k), bytes(sig)) for s, ts, h, k, sig in rows]

    def physical_columns(self, spec: ChainedTable) -> list[tuple[str, Kind]]:
        """``spec``'s columns and ``digest`` in the table's order: insert_into is positional."""
        cached = self._physical.get(spec.name)
        if cached is None:
            kinds = dict([*spec.columns, ("digest", Kind.BLOB)])
            names = [
                r[0]
                for r in self.write_connection.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = ? ORDER BY ordinal_position",
                    [spec.name],
                ).fetchall()
            ]
            if sorted(names) != sorted(kinds):
                raise RecordError(f"{spec.name} does not have the columns its spec names")
            cached = self._physical[spec.name] = [(n, kinds[n]) for n in names]
        return cached

    def _head_pairs(self) -> dict[str, tuple[int, bytes]]:
        return {name: (h.seq, h.digest) for name, h in self.heads.items() if h.seq > 0}

    # -- writing -----------------------------------------------------------

    def submit(self, fn: Callable[[WriteTx], T]) -> Future[T]:
        job = _Job(fn)
        with self._submit_lock:
            if self._closed:
                raise RecordError("The record store is closed; nothing was recorded.")
            self._queue.put(job)
        return job.future

    def write(self, fn: Callable[[WriteTx], T], timeout: float = 30.0) -> T:
        """Run ``fn`` in the writer's transaction; returns once it is committed."""
        return self.submit(fn).result(timeout=timeout)

    async def awrite(self, fn: Callable[[WriteTx], T]) -> T:
        import asyncio

        return await asyncio.wrap_future(self.submit(fn))

    def append(self, table: ChainedTable | str, row: Mapping[str, object]) -> Appended:
        """Append one chained row and return once it is durable."""
        return self.write(lambda tx: tx.append(table, row))

    def exclusive(self, fn: Callable[[duckdb.DuckDBPyConnection], T], timeout: float = 600.0) -> T:
        """Run ``fn(write_connection)`` on the writer thread with no write in progress.

        Writes submitted meanwhile wait in the queue, so the database file, its WAL
        and the anchor file stand still while ``fn`` runs (how a backup copies them).
        """
        item: _Exclusive = _Exclusive(fn)
        with self._submit_lock:
            if self._closed:
                raise RecordError("The record store is closed.")
            self._queue.put(item)
        result: T = item.future.result(timeout=timeout)
        return result

    def checkpoint_now(self) -> None:
        def request(tx: WriteTx) -> None:
            tx.checkpoint_requested = True

        self.write(request)

    # -- reading -----------------------------------------------------------

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of one's own for reading while the writer writes."""
        with self._cursor_lock:
            cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.reader() as cur:
            return cur.execute(sql, params).fetchall()

    # -- the writer thread ---------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=1.0)
            except queue.Empty:
                first = None
            batch: list[_Job] = []
            exclusive: _Exclusive | None = None
            if first is _STOP:
                stopping = True
            elif isinstance(first, _Exclusive):
                exclusive = first
            elif first is not None:
                batch.append(first)
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stopping = True
                        break
                    if isinstance(nxt, _Exclusive):
                        exclusive = nxt
                        break
                    batch.append(nxt)
            if batch:
                self._commit(batch)
            if exclusive is not None:
                self._run_exclusive(exclusive)
            self._periodic_checkpoint()
        self._periodic_checkpoint(force=True)

    def _run_exclusive(self, item: _Exclusive) -> None:
        self._anchor()  # the anchor file holds every committed checkpoint it can
        try:
            item.future.set_result(item.fn(self.write_connection))
        except Exception as exc:
            item.future.set_exception(exc)

    def _commit(self, batch: list[_Job]) -> None:
        saved_heads = dict(self.heads)
        saved_checkpoint_seq = self._checkpoint_seq
        con = self.write_connection
        tx = WriteTx(self)
        results: list[Any] = []
        checkpoint: Checkpoint | None = None
        try:
            for job in batch:
                results.append(job.fn(tx))
            if tx.checkpoint_requested or len(tx._pending) > 1:
                tx.begin()
            tx.flush()
            if tx.checkpoint_requested:
                checkpoint = self._write_checkpoint(con)
            if tx.begun:
                con.execute("COMMIT")
        except Exception as exc:
            if tx.begun:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
            self.heads = saved_heads
            self._checkpoint_seq = saved_checkpoint_seq
            if len(batch) > 1:
                for job in batch:
                    self._commit([job])
                return
            batch[0].future.set_exception(_as_record_error(exc))
            return
        if checkpoint is not None:
            self._anchor(checkpoint)
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def _write_checkpoint(self, con: duckdb.DuckDBPyConnection) -> Checkpoint:
        self._checkpoint_seq += 1
        checkpoint = Checkpoint.make(
            self._checkpoint_seq, self.clock.now(), self._head_pairs(), self.keys
        )
        con.execute(
            "INSERT INTO checkpoints (seq, ts, heads, key_id, signature) VALUES (?, ?, ?, ?, ?)",
            [
                checkpoint.seq,
                checkpoint.ts,
                checkpoint.heads,
                checkpoint.key_id,
                checkpoint.signature,
            ],
        )
        self._checkpointed_heads = checkpoint.heads
        self._last_checkpoint = self.clock.monotonic()
        return checkpoint

    def _anchor(self, checkpoint: Checkpoint | None = None) -> None:
        """Copy committed checkpoints to the anchor file; on failure keep them and retry later."""
        if checkpoint is not None:
            self._unanchored.append(checkpoint)
        if not self._unanchored:
            return
        try:
            self.anchors.append_all(self._unanchored)
        except OSError as exc:
            log.error("anchor file %s not written: %s", self.data_dir.anchors, exc)
            if self.on_anchor_failure is not None:
                self.on_anchor_failure(exc)
            return
        self._unanchored.clear()

    def _periodic_checkpoint(self, force: bool = False) -> None:
        due = self.clock.monotonic() - self._last_checkpoint >= self.checkpoint_interval
        if not (due or force) or heads_text(self._head_pairs()) == self._checkpointed_heads:
            self._anchor()
            return
        job: _Job = _Job(lambda tx: setattr(tx, "checkpoint_requested", True))
        self._commit([job])

    # -- closing -----------------------------------------------------------

    def close(self) -> None:
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout=30)
        while not self._queue.empty():
            left = self._queue.get_nowait()
            if isinstance(left, _Job | _Exclusive):
                left.future.set_exception(
                    RecordError("The record store closed before this was recorded.")
                )
        self.write_connection.close()
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_record_error(exc: Exception) -> Exception:
    if isinstance(exc, RecordError | DataDirectoryError) or not isinstance(exc, duckdb.Error):
        return exc
    text = str(exc)
    if any(s in text for s in ("No space left", "File too large", "Disk quota")):
        return RecordError(
            f"The record could not be written: the disk is full, so the action was not "
            f"performed. Free space on the records disk. ({text})"
        )
    return RecordError(f"The record could not be written: {text}")
