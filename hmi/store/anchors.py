"""Signed checkpoints and the anchor file.

A checkpoint is an Ed25519 signature over the head (last seq and digest) of
every chain. It is written into the database and, after the commit, appended
to ``anchors.log`` outside the database. Rows deleted from the end of a table
leave no gap in the chain, but the anchor file still vouches for the head
that was there: that is how truncation is detected.

Anchor line (JSON, one per checkpoint)::

    {"seq": 12, "ts_us": 1767600000000000, "heads": "audit_records:42:ab..;...",
     "key_id": "...", "signature": "hex"}

The signed message is ``custos-checkpoint|v1|<seq>|<ts_us>|<heads>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hmi.core.audit import epoch_us
from hmi.store.keys import KeyRing


def heads_text(heads: Mapping[str, tuple[int, bytes]]) -> str:
    return ";".join(f"{name}:{seq}:{digest.hex()}" for name, (seq, digest) in sorted(heads.items()))


def parse_heads(text: str) -> dict[str, tuple[int, str]]:
    heads: dict[str, tuple[int, str]] = {}
    for part in filter(None, text.split(";")):
        name, seq, digest = part.split(":")
        heads[name] = (int(seq), digest)
    return heads


def checkpoint_message(seq: int, ts: datetime, heads: str) -> bytes:
    return f"custos-checkpoint|v1|{seq}|{epoch_us(ts)}|{heads}".encode()


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    ts: datetime
    heads: str
    key_id: str
    signature: bytes

    @classmethod
    def make(
        cls, seq: int, ts: datetime, heads: Mapping[str, tuple[int, bytes]], keys: KeyRing
    ) -> Checkpoint:
        text = heads_text(heads)
        return cls(seq, ts, text, keys.key_id, keys.sign(checkpoint_message(seq, ts, text)))

    @property
    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.ts, self.heads)

    def to_line(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "ts_us": epoch_us(self.ts),
                "heads": self.heads,
                "key_id": self.key_id,
                "signature": self.signature.hex(),
            },
            sort_keys=True,
        )

    @classmethod
    def from_line(cls, line: str) -> Checkpoint:
        data = json.loads(line)
        ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(data["ts_us"]))
        return cls(
            int(data["seq"]),
            ts,
            str(data["heads"]),
            str(data["key_id"]),
            bytes.fromhex(data["signature"]),
        )


class AnchorLog:
    """The append-only anchor file (each append is fsynced)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append_all(self, checkpoints: Iterable[Checkpoint]) -> None:
        text = "".join(c.to_line() + "\n" for c in checkpoints)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def last_seq(self) -> int | None:
        """The newest anchored checkpoint (0 if none); None if the last line is unreadable."""
        lines = self.read()
        if not lines:
            return 0
        try:
            return Checkpoint.from_line(lines[-1][1]).seq
        except (ValueError, KeyError):
            return None

    def read(self) -> list[tuple[int, str]]:
        """(line number, text) of every non-empty line."""
        if not self.path.exists():
            return []
        return [
            (n, line)
            for n, line in enumerate(self.path.read_text("utf-8").splitlines(), start=1)
            if line.strip()
        ]
