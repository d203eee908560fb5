"""Check the write-once image files against the capture records that name them.

The chain proves a capture row is as written; only the file itself can prove
the image is. Each row's file must exist under ``DATA/images`` and have the
row's SHA-256 and size. A row the chain check already reported is not
checked against its file: its values cannot be trusted, and the row is
already named.

A file that no row names is a *note*, not a problem: an image is stored
before its row is written, so a crash in between leaves such a file, and it
proves nothing on its own. Rows removed to hide a capture are caught by the
chain and the checkpoints, not here. A file whose read-only mode was lifted
but whose content is intact is a note too.
"""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from hmi.store.tables import CAPTURES

if TYPE_CHECKING:
    from hmi.store.verify import VerifyReport

IMAGE_EXTENSIONS: tuple[str, ...] = ("png", "tiff")
"""The formats a capture may have; the file extension is the format."""

_NAME = re.compile(r"^([0-9a-f]{64})\.([a-z]+)$")


def image_file_name(sha256_hex: str, fmt: str) -> str:
    """``<sha256>.<format>``: the one name an image may have in the images folder."""
    if fmt not in IMAGE_EXTENSIONS:
        raise ValueError(f"images are stored as {' or '.join(IMAGE_EXTENSIONS)}, not {fmt!r}")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256_hex):
        raise ValueError(f"{sha256_hex!r} is not a lower-case hex SHA-256")
    return f"{sha256_hex}.{fmt}"


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks so large images need little memory."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        return digest.hexdigest(), f.tell()


def verify_images(cur: duckdb.DuckDBPyConnection, images: Path, report: VerifyReport) -> None:
    """Check every capture row's image file; orphan and writable files become notes."""
    table = CAPTURES.name
    rows = cur.execute(f"SELECT seq, sha256, size, format FROM {table} ORDER BY seq").fetchall()
    distrusted = {p.seq for p in report.problems if p.table == table}
    named: set[str] = set()
    checked: dict[Path, tuple[str, int] | None] = {}
    matched = 0
    for seq, sha256, size, fmt in rows:
        digest = bytes(sha256).hex()
        candidates = [images / f"{digest}.{ext}" for ext in IMAGE_EXTENSIONS]
        named.update(path.name for path in candidates)
        if seq in distrusted:
            continue
        if len(sha256) != 32:
            report.add(table, seq, f"sha256 holds {len(sha256)} bytes, not a SHA-256")
            continue
        found = [path for path in candidates if path.is_file()]
        if not found:
            expected = f"{digest}.{fmt if fmt in IMAGE_EXTENSIONS else '*'}"
            report.add(table, seq, f"image file {images / expected} is missing")
            continue
        path = found[0]
        if path not in checked:
            try:
                checked[path] = file_sha256(path)
            except OSError as exc:
                checked[path] = None
                report.add(table, seq, f"image file {path} cannot be read: {exc.strerror}")
        actual = checked[path]
        if actual is None:
            continue
        if actual != (digest, size):
            report.add(
                table,
                seq,
                f"image file {path} was altered: it has SHA-256 {actual[0]} and {actual[1]} "
                f"bytes; the record says {digest} and {size} bytes",
            )
            continue
        matched += 1
        if path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            report.note(f"image file {path} (capture seq {seq}) is writable; it should be 0444")
    report.images = matched
    _orphans(images, named, report)


def _orphans(images: Path, named: set[str], report: VerifyReport) -> None:
    if not images.is_dir():
        return
    for path in sorted(images.iterdir()):
        if path.name in named:
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            report.note(f"{path} is an unfinished temporary file (a capture was interrupted)")
        elif _NAME.match(path.name):
            report.note(
                f"image file {path} is named by no capture (stored, then the capture was not "
                "recorded, e.g. a crash in between)"
            )
        else:
            report.note(f"{path} does not belong in the images folder")
