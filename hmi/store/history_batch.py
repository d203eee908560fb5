"""One batch of tag history: its canonical form in Python and in SQL, and its check.

A batch's values are covered by the SHA-256 of their canonical rows, which
the chained batch row (``HISTORY_BATCHES``) holds; ``verify_history``
recomputes that SHA-256 in DuckDB for every batch and names the rows that do
not match. The writer (``prepare_batch``) and the verifier (``ROW_SQL``) must
produce the same bytes for every stored row, which a property test checks.

Canonical row: the fields below joined with ``|``, encoded as in
``hmi.core.audit`` (``~`` NULL, ``s<bytes>:text``, ``i``, ``t<µs>``, ``b1``/``b0``)
plus one kind for numbers, ``f`` + ``printf("%.17g")``. Seventeen significant
digits identify a double exactly, and C's ``%.17g`` rules are what both
Python's ``.17g`` format and DuckDB's ``printf`` implement, whereas the shortest text of
a DOUBLE cast is a choice DuckDB has changed between versions. A batch's
SHA-256 is over its rows joined with ``\\n`` in ``idx`` order; the batch row
also keeps a CRC-32 of each row (4 bytes a value), so that verify can say
*which* row was changed, not only that one was. The CRC only locates: an edit
made to keep a row's CRC is still caught by the SHA-256, just not located.

Values are stored in two columns: ``value_num`` (DOUBLE: numbers, booleans as
1/0) and ``value_text`` (text; ``true``/``false`` for booleans; the exact
decimal of an integer a DOUBLE cannot hold). NaN and infinities are not
measurements: they are stored as NULL with quality BAD and a reason naming
them, so QA aggregates (avg, max) over the view stay meaningful.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from hmi.core.tags import Quality, TagChange, TagScalar
from hmi.store.tables import HISTORY_BATCHES

if TYPE_CHECKING:
    from hmi.store.db import Appended, Store, WriteTx
    from hmi.store.verify import VerifyReport

SYSTEM_ACTOR = "system:history"
"""The actor of the rows that record lost values."""
MAX_PROBLEMS_PER_BATCH = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_TS = pa.timestamp("us", tz="UTC")

ROW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("idx", "int"),
    ("tag", "text"),
    ("source_time", "timestamp"),
    ("server_time", "timestamp"),
    ("value_num", "float"),
    ("value_text", "text"),
    ("quality", "text"),
    ("reason", "text"),
    ("actor", "text"),
    ("unattributed", "bool"),
)
"""The columns of ``tag_history_values`` in canonical order (all but ``batch_seq``)."""

_SQL_ENCODING = {
    "int": "'i' || {c}::VARCHAR",
    "text": "'s' || strlen({c})::VARCHAR || ':' || {c}",
    "timestamp": "'t' || epoch_us({c})::VARCHAR",
    "float": "'f' || printf('%.17g', {c})",
    "bool": "CASE WHEN {c} THEN 'b1' WHEN NOT {c} THEN 'b0' END",
}
ROW_SQL = " || '|' || ".join(
    f"coalesce({_SQL_ENCODING[kind].format(c=name)}, '~')" for name, kind in ROW_COLUMNS
)
"""SQL giving a stored row's canonical text: exactly the bytes ``prepare_batch`` hashed."""

_COLUMNS = ", ".join(name for name, _ in ROW_COLUMNS)


def _text(value: str) -> str:
    n = len(value) if value.isascii() else len(value.encode("utf-8"))
    return f"s{n}:{value}"


def _us(ts: datetime) -> int:
    return (ts - _EPOCH) // _US


def _utc(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def split_value(value: TagScalar | None) -> tuple[float | None, str | None, str]:
    """``(value_num, value_text, problem)``: how a tag value is stored (see module docstring).

    ``problem`` is empty, or says why the value is stored as NULL with quality BAD.
    """
    if value is None:
        return None, None, ""
    if isinstance(value, bool):
        return (1.0, "true", "") if value else (0.0, "false", "")
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            return None, str(value), ""
        return number, (None if int(number) == value else str(value)), ""
    if isinstance(value, float):
        if math.isfinite(value):
            return value, None, ""
        return None, None, f"the device reported {value!r}, not a number; stored as NULL"
    if isinstance(value, str):
        return None, str.__str__(value), ""
    raise TypeError(f"a tag value must be bool, int, float or str, not {type(value).__name__}")


def join_value(value_num: float | None, value_text: str | None) -> TagScalar | None:
    """The tag value back from its two stored columns (an int comes back as a float)."""
    if value_text is None:
        return value_num
    if value_num is None:
        return value_text
    if value_text in ("true", "false") and value_num in (0.0, 1.0):
        return value_text == "true"
    return int(value_text)


@dataclass(frozen=True)
class Loss:
    """Values of one tag that were not recorded, and why."""

    tag: str
    count: int
    first_time: datetime
    last_time: datetime
    cause: str

    def reason(self) -> str:
        span = f"{self.first_time.isoformat()} to {self.last_time.isoformat()}"
        return f"history: {self.count} value(s) from {span} not recorded: {self.cause}"

    def marker(self) -> TagChange:
        """The BAD row that records this loss in the tag's own history."""
        return TagChange(
            self.tag, None, Quality.BAD, None, self.last_time, SYSTEM_ACTOR, self.reason()
        )


@dataclass(frozen=True)
class PreparedBatch:
    """A batch ready to insert: the Arrow rows (without ``batch_seq``) and its chained row."""

    table: pa.Table
    lines: list[bytes]
    """The canonical rows, in idx order."""
    values: int
    """Rows that are values (the rest are loss markers)."""
    lost: int
    first_time: datetime
    last_time: datetime
    rows_sha256: bytes
    row_crc32: bytes

    def chained_row(self) -> dict[str, object]:
        return {
            "first_time": self.first_time,
            "last_time": self.last_time,
            "row_count": len(self.lines),
            "lost_values": self.lost,
            "rows_sha256": self.rows_sha256,
            "row_crc32": self.row_crc32,
        }

    def write(self, tx: WriteTx, store: Store) -> Appended:
        """Append the chained batch row and insert the values, in ``tx``'s transaction."""
        appended = tx.append(HISTORY_BATCHES, self.chained_row())
        tx.begin()  # the values and their batch row commit together, or neither does
        rows = store.write_connection.from_arrow(self.table)
        # insert_into is positional: batch_seq first, then the columns in table order.
        rows.project(f"{int(appended.seq)}::BIGINT AS batch_seq, {_COLUMNS}").insert_into(
            "tag_history_values"
        )
        return appended


def prepare_batch(changes: Sequence[TagChange], losses: Sequence[Loss] = ()) -> PreparedBatch:
    """Columns, canonical rows and digests of a batch; the values first, then loss markers.

    Written column by column with comprehensions: this runs for every logged value,
    and per-row function calls and appends were most of its cost.
    """
    rows = [*changes, *(loss.marker() for loss in losses)]
    n = len(rows)
    if not n:
        raise ValueError("an empty batch is never written")
    nums: list[float | None] = []
    texts: list[str | None] = []
    qualities: list[str] = []
    reasons: list[str] = []
    good = Quality.GOOD
    for c in rows:
        value, reason = c.value, c.reason or ""
        quality = "GOOD" if c.quality is good else c.quality.value
        if type(value) is float and value - value == 0.0:  # finite: the common case
            nums.append(value)
            texts.append(None)
        else:
            num, text, problem = split_value(value)
            nums.append(num)
            texts.append(text)
            if problem:
                quality, reason = Quality.BAD.value, f"{reason}; {problem}" if reason else problem
        qualities.append(quality)
        reasons.append(reason)
    # Tags, actors, qualities and a poll's timestamps repeat: encode each distinct one once.
    servers = [c.server_time for c in rows]
    sources = [c.source_time for c in rows]
    micros = {t: _us(t) for t in {*servers, *sources} if t is not None}
    srv = [micros[t] for t in servers]
    src = [None if t is None else micros[t] for t in sources]
    tags = [c.tag for c in rows]
    actors = [c.actor for c in rows]
    flags = [c.unattributed for c in rows]
    enc = {t: _text(t) for t in {*tags, *actors, *qualities}}
    idx = list(range(n))
    lines = [
        (
            f"i{i}|{enc[tag]}|{'~' if s is None else f't{s}'}|t{t}|"
            f"{'~' if num is None else f'f{num:.17g}'}|{'~' if text is None else _text(text)}|"
            f"{enc[quality]}|{_text(reason) if reason else 's0:'}|{enc[actor]}|"
            f"{'b1' if flag else 'b0'}"
        ).encode()
        for i, tag, s, t, num, text, quality, reason, actor, flag in zip(
            idx, tags, src, srv, nums, texts, qualities, reasons, actors, flags, strict=True
        )
    ]
    table = pa.table(
        {
            "idx": pa.array(idx, pa.int32()),
            "tag": pa.array(tags, pa.string()),
            "source_time": pa.array(src, pa.int64()).cast(_TS),
            "server_time": pa.array(srv, pa.int64()).cast(_TS),
            "value_num": pa.array(nums, pa.float64()),
            "value_text": pa.array(texts, pa.string()),
            "quality": pa.array(qualities, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "actor": pa.array(actors, pa.string()),
            "unattributed": pa.array(flags, pa.bool_()),
        }
    )
    return PreparedBatch(
        table=table,
        lines=lines,
        values=len(changes),
        lost=sum(loss.count for loss in losses),
        first_time=_utc(min(srv)),
        last_time=_utc(max(srv)),
        rows_sha256=hashlib.sha256(b"\n".join(lines)).digest(),
        row_crc32=row_checksums(lines),
    )


def row_checksums(lines: Sequence[bytes]) -> bytes:
    """CRC-32 of each canonical row, 4 bytes little-endian each, in idx order."""
    crc = zlib.crc32
    return struct.pack(f"<{len(lines)}I", *[crc(line) for line in lines])


def write_batch(
    store: Store, changes: Sequence[TagChange], losses: Sequence[Loss] = ()
) -> Appended:
    """Write one batch now and return its chained row once committed (tests, imports)."""
    batch = prepare_batch(changes, losses)
    return store.write(lambda tx: batch.write(tx, store))


# -- verification -------------------------------------------------------------------

_MISMATCHES = f"""
WITH agg AS (
    SELECT batch_seq, count(*) AS n,
           sha256(string_agg(canonical, chr(10) ORDER BY idx)) AS computed
    FROM (SELECT batch_seq, idx, {ROW_SQL} AS canonical FROM tag_history_values)
    GROUP BY batch_seq
)
SELECT coalesce(b.seq, agg.batch_seq), b.seq IS NOT NULL, b.row_count, agg.n, b.row_crc32
FROM agg FULL OUTER JOIN {HISTORY_BATCHES.name} b ON agg.batch_seq = b.seq
WHERE b.seq IS NULL OR agg.batch_seq IS NULL OR agg.n <> b.row_count
   OR agg.computed <> lower(hex(b.rows_sha256))
ORDER BY 1
"""

_ROWS_OF_BATCH = f"""
SELECT idx, tag, {ROW_SQL} FROM tag_history_values WHERE batch_seq = ? ORDER BY idx
"""


def verify_history(cur: duckdb.DuckDBPyConnection, report: VerifyReport) -> None:
    """Check every history value against the SHA-256 its chained batch row holds.

    Problems are reported against ``HISTORY_BATCHES`` at the batch's seq, naming the
    row (``idx``). A batch row the chain check already reported is not compared: it
    vouches for nothing, and the batch is failed already.
    """
    table = HISTORY_BATCHES.name
    failed = {p.seq for p in report.problems if p.table == table and p.seq is not None}
    (last,) = cur.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone() or (0,)
    for seq, exists, row_count, found, row_crc32 in cur.execute(_MISMATCHES).fetchall():
        if not exists:
            where = f"batches end at seq {last}: truncated?" if seq > last else "batch row deleted?"
            report.add(
                table, seq, f"{found} history row(s) name batch {seq}, which is missing ({where})"
            )
        elif seq not in failed:
            for message in _locate(cur, seq, row_count, bytes(row_crc32)):
                report.add(table, seq, message)


def _locate(
    cur: duckdb.DuckDBPyConnection, seq: int, row_count: int, row_crc32: bytes
) -> list[str]:
    """Which rows of batch ``seq`` were changed, deleted or inserted."""
    if len(row_crc32) != 4 * row_count:
        return ["the batch's row checksums do not cover its rows"]
    expected = struct.unpack(f"<{row_count}I", row_crc32)
    by_idx: dict[int, list[tuple[str, int]]] = {}
    for idx, tag, canonical in cur.execute(_ROWS_OF_BATCH, [seq]).fetchall():
        by_idx.setdefault(idx, []).append((tag, zlib.crc32(canonical.encode("utf-8"))))
    if not by_idx:
        return [f"all {row_count} history rows of the batch are missing (deleted)"]
    messages = [
        f"history row {idx} is missing (deleted)" for idx in range(row_count) if idx not in by_idx
    ]
    for idx, group in sorted(by_idx.items()):
        if not 0 <= idx < row_count:
            messages += [
                f"history row {idx} ({tag}) is not part of the batch of {row_count} (inserted)"
                for tag, _ in group
            ]
            continue
        want = expected[idx]
        matching = sum(1 for _, short in group if short == want)
        others = [tag for tag, short in group if short != want]
        if len(group) == 1 and others:
            messages.append(f"history row {idx} ({others[0]}) does not match the batch (changed)")
        elif not matching and others:
            messages.append(
                f"history row {idx} appears {len(group)} times and none matches the batch "
                "(changed and inserted)"
            )
        else:
            messages += [
                f"history row {idx} ({tag}) is a second row {idx} (inserted)" for tag in others
            ]
            if matching > 1:
                messages.append(f"history row {idx} appears {matching} times (inserted)")
    if not messages:
        messages.append("the batch's rows do not match its SHA-256 (changed)")
    if len(messages) > MAX_PROBLEMS_PER_BATCH:
        more = len(messages) - MAX_PROBLEMS_PER_BATCH
        messages = [*messages[:MAX_PROBLEMS_PER_BATCH], f"... and {more} more problem(s)"]
    return messages
