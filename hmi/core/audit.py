"""The canonical form of a record and its chain digest.

Every regulated row is hashed in a canonical text form so that the same row
always gives the same bytes, whatever reads it back. Each field is encoded
by its kind, fields are joined with ``|``:

==========  =====================================  ==================
kind        encoding                               example
==========  =====================================  ==================
NULL        ``~``                                  ``~``
text        ``s`` + UTF-8 byte length + ``:`` +    ``s5:pH 7!``
            the text
int         ``i`` + decimal                        ``i42``
bool        ``b1`` / ``b0``                        ``b1``
timestamp   ``t`` + microseconds since the Unix    ``t1767600000000000``
            epoch, UTC
blob        ``x`` + lower-case hex                 ``x00ff``
==========  =====================================  ==================

The length prefix makes the encoding unambiguous without escaping. A row's
digest is ``HMAC-SHA256(key, previous digest || canonical row)``; the first
row of a table chains from ``genesis(key, table)``, so a row cannot be moved
between tables or chains. The same encoding is computed in SQL by the store's
verifier (see ``hmi.store.chain``), which is why only these kinds exist: each
has one exact text form in both Python and DuckDB.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Kind(enum.Enum):
    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    BLOB = "blob"


def epoch_us(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("record timestamps must be timezone-aware (UTC)")
    return (ts - _EPOCH) // _MICROSECOND


def encode_field(kind: Kind, value: object) -> str:
    if value is None:
        return "~"
    if kind is Kind.TEXT:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {type(value).__name__}: convert it first")
        return f"s{len(value.encode('utf-8'))}:{value}"
    if kind is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an int, got {type(value).__name__}")
        return f"i{value}"
    if kind is Kind.BOOL:
        return "b1" if value else "b0"
    if kind is Kind.TIMESTAMP:
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        return f"t{epoch_us(value)}"
    if kind is Kind.BLOB:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"expected bytes, got {type(value).__name__}")
        return "x" + bytes(value).hex()
    raise AssertionError(kind)


def canonical_row(kinds: Iterable[tuple[str, Kind]], row: Mapping[str, object]) -> bytes:
    """The canonical bytes of ``row`` for the columns ``kinds``, in that order."""
    return "|".join(encode_field(kind, row.get(name)) for name, kind in kinds).encode("utf-8")


def genesis(key: bytes, table: str) -> bytes:
    """The digest the first row of ``table`` chains from."""
    return hmac.digest(key, b"custos-genesis|" + table.encode("utf-8"), "sha256")


def chain_digest(key: bytes, previous: bytes, canonical: bytes) -> bytes:
    return hmac.digest(key, previous + canonical, "sha256")


def key_check(key: bytes) -> str:
    """A fingerprint of the HMAC key, stored with the records so a swapped key is named as such."""
    return hmac.digest(key, b"custos-key-check", "sha256").hex()[:32]


def canonical_json(value: object) -> str:
    """Deterministic JSON (sorted keys, no spaces) for structured fields and signed content."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_digest(value: object) -> str:
    """SHA-256 (hex) of the canonical JSON of ``value``: what a signature is bound to."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
