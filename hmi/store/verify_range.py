"""Verify the records a screen shows: their chain, and its link to a signed checkpoint.

``hmi verify`` recomputes everything, which is too slow to do for every page
of the audit trail. A page needs less: the rows shown must chain from the row
before them (``verify_chain`` over a range), and that chain must reach a row a
signed checkpoint vouches for, since the HMAC alone does not stop someone who
holds the key from rewriting the rows and every digest after them. The
checkpoint used is the first whose head is at or past the last row shown (so
an old page costs only the rows up to it); rows newer than the newest
checkpoint are checked from its head forward and said to be not yet vouched for.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from hmi.store.anchors import Checkpoint, parse_heads
from hmi.store.keys import KeyRing, verify_signature
from hmi.store.tables import ChainedTable
from hmi.store.verify import VerifyReport, verify_chain

_CHECKPOINT = "SELECT seq, ts, heads, key_id, signature FROM checkpoints"


@dataclass(frozen=True)
class RangeResult:
    ok: bool
    rows_checked: int
    summary: str
    checkpoint: Checkpoint | None
    failed_seqs: tuple[int, ...]


def _head_seq(table: str) -> str:
    """SQL: the checkpoint's head sequence number for ``table`` (NULL if absent)."""
    return f"try_cast(regexp_extract(heads, '(^|;){table}:([0-9]+):', 2) AS BIGINT)"


def _checkpoint_for(
    cur: duckdb.DuckDBPyConnection, table: ChainedTable, last: int
) -> Checkpoint | None:
    row = cur.execute(
        f"{_CHECKPOINT} WHERE {_head_seq(table.name)} >= ? ORDER BY seq LIMIT 1", [last]
    ).fetchone()
    if row is None:
        row = cur.execute(f"{_CHECKPOINT} ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    seq, ts, heads, key_id, signature = row
    return Checkpoint(int(seq), ts, str(heads), str(key_id), bytes(signature))


def verify_range(
    cur: duckdb.DuckDBPyConnection, table: ChainedTable, keys: KeyRing, first: int, last: int
) -> RangeResult:
    """Check rows ``first..last`` of ``table`` and their link to a signed checkpoint."""
    report = VerifyReport()
    checkpoint = _checkpoint_for(cur, table, last)
    head: tuple[int, str] | None = None
    if checkpoint is not None:
        head = parse_heads(checkpoint.heads).get(table.name)
        if not verify_signature(keys.public_key, checkpoint.signature, checkpoint.message):
            report.add("checkpoints", checkpoint.seq, "signature does not verify")
    head_seq = head[0] if head is not None else 0
    lo = min(first, head_seq + 1) if head_seq else first
    hi = max(last, head_seq)
    digests = verify_chain(cur, table, keys.hmac_key, report, first=lo, last=hi)
    if checkpoint is not None and head is not None and head_seq:
        _check_head(cur, table, report, digests, checkpoint.seq, head_seq, head[1], lo)
    return _result(report, table, first, last, checkpoint, head_seq)


def _check_head(
    cur: duckdb.DuckDBPyConnection,
    table: ChainedTable,
    report: VerifyReport,
    digests: dict[int, bytes],
    checkpoint_seq: int,
    head_seq: int,
    head_hex: str,
    lo: int,
) -> None:
    """The row the checkpoint vouches for must be the one the chain reached."""
    stored = digests.get(head_seq)
    if stored is None and head_seq == lo - 1:
        found = cur.execute(f"SELECT digest FROM {table.name} WHERE seq = ?", [head_seq]).fetchone()
        stored = bytes(found[0]) if found else None
    if stored is None:
        report.add(table.name, head_seq, f"checkpoint {checkpoint_seq} vouches for a missing row")
    elif stored.hex() != head_hex:
        report.add(
            table.name,
            head_seq,
            f"row differs from the one checkpoint {checkpoint_seq} vouches for",
        )


def _result(
    report: VerifyReport,
    table: ChainedTable,
    first: int,
    last: int,
    checkpoint: Checkpoint | None,
    head_seq: int,
) -> RangeResult:
    checked = report.rows.get(table.name, 0)
    failed = tuple(sorted({p.seq for p in report.problems if p.seq is not None}))
    if not report.ok:
        summary = "FAILED: " + "; ".join(str(p) for p in report.problems[:5])
        if len(report.problems) > 5:
            summary += f"; and {len(report.problems) - 5} more"
        return RangeResult(False, checked, summary, checkpoint, failed)
    shown = f"{table.view} seq {first}..{last}"
    if checkpoint is None:
        summary = f"OK: {shown} chained ({checked} rows); no signed checkpoint yet"
    else:
        summary = (
            f"OK: {shown} chained ({checked} rows checked) to signed checkpoint "
            f"{checkpoint.seq} (seq {head_seq})"
        )
        if head_seq < last:
            summary += f"; rows after seq {head_seq} are not yet under a checkpoint"
    return RangeResult(True, checked, summary, checkpoint, failed)
