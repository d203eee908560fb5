"""Recompute every chain and checkpoint, and say exactly what does not hold.

The canonical form of each row is built in SQL (see ``canonical_sql``), so
DuckDB does the per-column work and Python only computes one HMAC per row.
Each row is checked against the *stored* digest of the row before it, so an
altered row is reported by itself, and a removed or inserted row is reported
where the chain breaks. Checkpoints are checked against the public key and
against the rows they vouch for; ``anchors.log`` is checked against the
checkpoints, which is what detects rows removed from the end.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hmi.core.audit import Kind, genesis, key_check
from hmi.core.errors import DataDirectoryError
from hmi.store import migrate
from hmi.store.anchors import AnchorLog, Checkpoint, parse_heads
from hmi.store.datadir import DataDir
from hmi.store.history import verify_history
from hmi.store.keys import PUBLIC_KEY_FILE, KeyRing, public_key_id, verify_signature
from hmi.store.tables import CAPTURES, CHAINED_TABLES, HISTORY_BATCHES, ChainedTable
from hmi.store.verify_images import verify_images

_SQL_ENCODING = {
    Kind.TEXT: "concat('s', strlen({c}), ':', {c})",
    Kind.INT: "concat('i', {c})",
    Kind.BOOL: "CASE WHEN {c} THEN 'b1' WHEN NOT {c} THEN 'b0' END",
    Kind.TIMESTAMP: "concat('t', epoch_us({c}))",
    Kind.BLOB: "concat('x', lower(hex({c})))",
}


def canonical_sql(table: ChainedTable) -> str:
    """A SQL expression giving the canonical text of a row of ``table`` (see hmi.core.audit).

    One ``concat_ws`` builds each row's text in a single pass; a chain of ``||``
    made an intermediate string per operator and was most of the query's cost.
    ``concat`` skips NULLs rather than propagating them, hence the explicit test.
    """
    parts = [
        f"CASE WHEN {name} IS NULL THEN '~' ELSE {_SQL_ENCODING[kind].format(c=name)} END"
        for name, kind in table.columns
    ]
    return f"concat_ws('|', {', '.join(parts)})"


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) with the key schedule done once: inner and outer hash states.

    ``hmac.digest`` re-derives the key pads (and, with OpenSSL 3, looks the
    digest up) on every call; copying two prepared states is about twice as fast.
    """
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return (
        hashlib.sha256(bytes(b ^ 0x36 for b in key)),
        hashlib.sha256(bytes(b ^ 0x5C for b in key)),
    )


@dataclass(frozen=True)
class Problem:
    table: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = self.table if self.seq is None else f"{self.table} seq {self.seq}"
        return f"{where}: {self.message}"


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    anchors: int = 0
    last_checkpoint: Checkpoint | None = None
    images: int | None = None
    """Image files that match their capture records; None when image files were not checked."""
    notes: list[str] = field(default_factory=list)
    """Findings that do not make the records invalid (e.g. an image file no capture names)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, table: str, seq: int | None, message: str) -> None:
        self.problems.append(Problem(table, seq, message))

    def note(self, message: str) -> None:
        self.notes.append(message)

    def summary(self) -> str:
        total = sum(self.rows.values())
        tables = len(self.rows)
        cp = self.last_checkpoint
        anchor = f", last checkpoint {cp.seq} at {cp.ts.isoformat()}" if cp else ""
        if self.images is not None:
            anchor += f"; {self.images} image files match their records"
        if self.notes:
            anchor += f"; {len(self.notes)} note(s)"
        if self.ok:
            return (
                f"OK: {total} records in {tables} chains, {self.checkpoints} signed checkpoints, "
                f"{self.anchors} anchors verified{anchor}"
            )
        return f"FAILED: {len(self.problems)} problem(s) in {total} records{anchor}"


def verify_chain(
    cur: duckdb.DuckDBPyConnection,
    table: ChainedTable,
    hmac_key: bytes | None,
    report: VerifyReport,
    *,
    first: int = 1,
    last: int | None = None,
    start_digest: bytes | None = None,
) -> dict[int, bytes]:
    """Check one table (or its rows ``first..last``); returns seq → stored digest.

    A range starts from the stored digest of row ``first - 1``, so a screen can
    check the rows it shows without recomputing the whole chain; a missing row
    ``first - 1`` is reported, and the first row then fails its digest. An
    inspection package holds no row ``first - 1``, only its digest: ``start_digest``.
    """
    select = f"SELECT seq, digest, encode({canonical_sql(table)}) FROM {table.name}"
    if first > 1 or last is not None:
        top = last if last is not None else 2**62
        rows = cur.execute(
            f"{select} WHERE seq BETWEEN ? AND ? ORDER BY seq", [first - 1, top]
        ).fetchall()
    else:
        rows = cur.execute(f"{select} ORDER BY seq").fetchall()
    digests: dict[int, bytes] = {}
    expected = first
    previous = genesis(hmac_key, table.name) if hmac_key is not None else b""
    if first > 1 and start_digest is not None:
        rows = [r for r in rows if r[0] >= first]
        previous = start_digest
    elif first > 1:
        if rows and rows[0][0] == first - 1:
            previous = bytes(rows[0][1])
            rows = rows[1:]
        else:
            report.add(table.name, first - 1, "row is missing (deleted)")
            previous = b""
    report.rows[table.name] = len(rows)
    if hmac_key is not None:
        inner, outer = _hmac_pads(hmac_key)
        inner_copy, outer_copy = inner.copy, outer.copy
    compare = hmac.compare_digest
    for seq, stored, canonical in rows:
        if seq != expected:  # the common case (in order, no gap) skips every test below
            if seq in digests:
                report.add(table.name, seq, "sequence number appears twice (row inserted)")
            elif seq > expected:
                missing = (
                    f"row {expected} is"
                    if seq == expected + 1
                    else f"rows {expected}..{seq - 1} are"
                )
                report.add(table.name, seq, f"{missing} missing before this row (deleted)")
            else:
                report.add(table.name, seq, "sequence out of order")
        if hmac_key is not None:
            h = inner_copy()
            h.update(previous)
            h.update(canonical)
            o = outer_copy()
            o.update(h.digest())
            if not compare(o.digest(), stored):
                report.add(
                    table.name,
                    seq,
                    "digest does not match: the row was altered, inserted, or the row before it "
                    "was removed",
                )
        digests.setdefault(seq, stored)
        previous = stored
        if seq >= expected:
            expected = seq + 1
    return digests


def _check_heads(
    report: VerifyReport,
    label: str,
    heads: str,
    digests: dict[str, dict[int, bytes]],
) -> None:
    for name, (seq, digest_hex) in parse_heads(heads).items():
        table_digests = digests.get(name)
        if table_digests is None:
            report.add(name, None, f"{label} names an unknown table")
            continue
        stored = table_digests.get(seq)
        if stored is None:
            last = max(table_digests, default=0)
            report.add(
                name,
                seq,
                f"{label} vouches for this row but it is missing (records end at seq {last}: "
                "truncated?)",
            )
        elif stored.hex() != digest_hex:
            report.add(name, seq, f"row differs from the one {label} vouches for")


def verify_checkpoints(
    cur: duckdb.DuckDBPyConnection,
    public_key: Ed25519PublicKey | None,
    anchors: AnchorLog,
    digests: dict[str, dict[int, bytes]],
    report: VerifyReport,
) -> None:
    key_id = public_key_id(public_key) if public_key is not None else None
    db_rows = cur.execute(
        "SELECT seq, ts, heads, key_id, signature FROM checkpoints ORDER BY seq"
    ).fetchall()
    in_db: dict[int, Checkpoint] = {}
    expected = 1
    for seq, ts, heads, cp_key_id, signature in db_rows:
        cp = Checkpoint(int(seq), ts, str(heads), str(cp_key_id), bytes(signature))
        if cp.seq != expected:
            report.add("checkpoints", cp.seq, f"checkpoint sequence jumps from {expected - 1}")
        expected = cp.seq + 1
        in_db[cp.seq] = cp
        if public_key is not None and not verify_signature(public_key, cp.signature, cp.message):
            report.add("checkpoints", cp.seq, "signature does not verify with the public key")
        elif key_id is not None and cp.key_id != key_id:
            report.add("checkpoints", cp.seq, "signed with a different key than the public key")
        _check_heads(report, f"checkpoint {cp.seq}", cp.heads, digests)
    report.checkpoints = len(in_db)
    report.last_checkpoint = in_db[max(in_db)] if in_db else None

    lines = anchors.read()
    if not anchors.path.exists() and in_db:
        report.add("anchors.log", None, f"{anchors.path} is missing")
        return
    report.anchors = len(lines)
    anchored: set[int] = set()
    for number, line in lines:
        try:
            anchor = Checkpoint.from_line(line)
        except (ValueError, KeyError) as exc:
            report.add("anchors.log", number, f"line {number} is not a checkpoint ({exc})")
            continue
        if public_key is not None and not verify_signature(
            public_key, anchor.signature, anchor.message
        ):
            report.add("anchors.log", anchor.seq, "anchor signature does not verify")
            continue
        anchored.add(anchor.seq)
        stored = in_db.get(anchor.seq)
        if stored is None:
            report.add(
                "checkpoints",
                anchor.seq,
                "checkpoint is in anchors.log but missing from the database (records removed?)",
            )
            _check_heads(report, f"anchored checkpoint {anchor.seq}", anchor.heads, digests)
        elif stored.to_line() != anchor.to_line():
            report.add("checkpoints", anchor.seq, "checkpoint differs from its copy in anchors.log")
    for seq in sorted(set(in_db) - anchored):
        report.add(
            "anchors.log",
            seq,
            f"checkpoint {seq} has no copy in anchors.log (line removed, or the runtime stopped "
            "before copying it)",
        )


def verify_records(
    cur: duckdb.DuckDBPyConnection,
    keys_dir: Path,
    anchors: AnchorLog,
    tables: Iterable[ChainedTable] | None = None,
    images: Path | None = None,
) -> VerifyReport:
    """Check every chain, checkpoint and anchor readable through ``cur``.

    With ``images`` (the data directory's images folder) every capture's image
    file is checked against its record too.
    """
    report = VerifyReport()
    hmac_key: bytes | None = None
    public_key: Ed25519PublicKey | None = None
    try:
        ring = KeyRing.load(keys_dir, need_signing=False)
        hmac_key, public_key = ring.hmac_key, ring.public_key
    except DataDirectoryError as exc:
        report.add("keys", None, exc.message + " Chains can only be checked for gaps.")
    if hmac_key is not None and migrate.get_meta(cur, "hmac_key_check") != key_check(hmac_key):
        report.add(
            "keys",
            None,
            "the HMAC key is not the key these records were written with (swapped key?); "
            "chains can only be checked for gaps",
        )
        hmac_key = None
    if public_key is not None and migrate.get_meta(cur, "checkpoint_key_id") != public_key_id(
        public_key
    ):
        report.add(
            "keys", None, f"{PUBLIC_KEY_FILE} is not the key these checkpoints were signed with"
        )
        public_key = None
    present = {
        str(r[0])
        for r in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    complete = (migrate.current_version(cur) or 0) >= migrate.code_version()
    digests: dict[str, dict[int, bytes]] = {}
    for table in tables if tables is not None else CHAINED_TABLES.values():
        if table.name in present:
            digests[table.name] = verify_chain(cur, table, hmac_key, report)
        elif complete:
            report.add(table.name, None, "table is missing from the database (dropped?)")
        else:
            report.note(
                f"{table.name} does not exist yet: the database is at an earlier schema version "
                "and gains it when the runtime next opens it"
            )
    verify_checkpoints(cur, public_key, anchors, digests, report)
    if {"tag_history_values", HISTORY_BATCHES.name} <= present:
        verify_history(cur, report)  # each history batch's values against its chained SHA-256
    if images is not None and CAPTURES.name in present:
        verify_images(cur, images, report)  # each capture's image file against its record
    return report


def verify_data_dir(root: Path) -> VerifyReport:
    """``hmi verify``: open the stopped runtime's database read-only and check everything."""
    data_dir = DataDir(root)
    data_dir.require_existing()
    from hmi.store.db import _open_connection

    con = _open_connection(data_dir.database, read_only=True)
    try:
        migrate.check_not_newer(con)
        return verify_records(
            con, data_dir.keys, AnchorLog(data_dir.anchors), images=data_dir.images
        )
    finally:
        con.close()
