"""Captured images: stored write-once under their SHA-256, then recorded in the chain.

An image is a file, not a database value, so that it can be opened by any
viewer and backed up like any file; the ``captures`` record holds its SHA-256
and size, so the chain (and ``verify``) vouches for the file too.

The file is written before its record. A crash in between leaves an image
no record names, which ``verify`` reports as a note: nothing points to it, so
it claims nothing. The opposite order could leave a record pointing to a
missing file, which is indistinguishable from a deleted image.

Files are never overwritten. They are written under a temporary name,
flushed to disk, made read-only (0444) and then *linked* to their final
name: unlike a rename, a link refuses to replace a file already there. Two
captures of identical bytes share one file, after its content is checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.camera import Camera
from hmi.core.audit import canonical_json
from hmi.core.captures import ArchivedImage, CapturedImage
from hmi.core.errors import RecordError
from hmi.core.records import Record
from hmi.store.db import Store, WriteTx
from hmi.store.recorder import apply_record
from hmi.store.tables import CAPTURES
from hmi.store.verify_images import file_sha256, image_file_name

READ_ONLY = 0o444
FOLDER_MODE = 0o750


class ImageStoreError(RecordError):
    """An image could not be stored or read back intact; the capture is not recorded."""


@dataclass(frozen=True)
class StoredImage:
    path: Path
    sha256: str
    size: int
    created: bool
    """False when an identical image was already stored (same bytes, same file)."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageStore:
    """The write-once images folder of a data directory (``DATA/images``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, sha256_hex: str, fmt: str) -> Path:
        return self.folder / image_file_name(sha256_hex, fmt)

    def put(self, data: bytes, fmt: str) -> StoredImage:
        """Store ``data`` as ``<sha256>.<fmt>``, read-only, durable once this returns."""
        digest = hashlib.sha256(data).hexdigest()
        try:
            path = self.path(digest, fmt)
        except ValueError as exc:
            raise ImageStoreError(f"The image was not stored: {exc}.") from exc
        try:
            self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            if os.path.lexists(path):
                self._same(path, digest, len(data))
                return StoredImage(path, digest, len(data), created=False)
            fd, temp = tempfile.mkstemp(prefix=f".{digest[:16]}-", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(temp, READ_ONLY)
                try:
                    os.link(temp, path)
                except FileExistsError:
                    self._same(path, digest, len(data))
                    return StoredImage(path, digest, len(data), created=False)
            finally:
                Path(temp).unlink(missing_ok=True)
            _fsync_dir(self.folder)
        except OSError as exc:
            raise ImageStoreError(
                f"The image could not be stored in {self.folder} ({exc.strerror or exc}), so "
                "the capture was not recorded."
            ) from exc
        return StoredImage(path, digest, len(data), created=True)

    def _same(self, path: Path, digest: str, size: int) -> None:
        """An image already stored under ``path`` must be exactly the bytes its name says."""
        if file_sha256(path) != (digest, size):
            raise ImageStoreError(
                f"The stored image {path} no longer matches its name: it was altered. It was "
                "not replaced and the capture was not recorded; run `hmi verify` and report it.",
                title="Image altered",
            )

    def read(self, sha256_hex: str, fmt: str) -> bytes:
        """The stored image, checked against its SHA-256 before it is handed out."""
        path = self.path(sha256_hex, fmt)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256_hex:
            raise ImageStoreError(f"The stored image {path} was altered.", title="Image altered")
        return data


@dataclass(frozen=True)
class CaptureRecord:
    """A capture as recorded: its place in the chain and its image file."""

    seq: int
    ts: datetime
    camera: str
    sha256: str
    size: int
    format: str
    width: int
    height: int
    path: Path
    record_digest: str


def capture_row(
    stored: StoredImage,
    result: CapturedImage,
    camera: str,
    *,
    actor_id: str | None = None,
    actor_name: str | None = None,
    terminal_id: str | None = None,
    signature_ids: Sequence[str] = (),
    run_id: str | None = None,
    step: str | None = None,
) -> dict[str, object]:
    """The ``captures`` row for an image already stored, for ``WriteTx.append``.

    The command service appends it in the same transaction as the audit row
    and signature of the capture command.
    """
    when = result.camera_time
    return {
        "camera": camera,
        "camera_time": when if when is not None and when.tzinfo is not None else None,
        "sha256": bytes.fromhex(stored.sha256),
        "size": stored.size,
        "format": result.format,
        "width": result.width,
        "height": result.height,
        "settings": canonical_json(result.settings),
        "actor_id": actor_id,
        "actor_name": actor_name,
        "terminal_id": terminal_id,
        "signature_ids": ",".join(signature_ids) or None,
        "run_id": run_id,
        "step": step,
    }


def record_capture(
    store: Store,
    result: CapturedImage,
    camera: str | Camera,
    *,
    actor_id: str | None = None,
    actor_name: str | None = None,
    terminal_id: str | None = None,
    signature_ids: Sequence[str] = (),
    run_id: str | None = None,
    step: str | None = None,
    records: Sequence[Record] = (),
) -> CaptureRecord:
    """Store the image write-once, then append its ``captures`` row; returns once durable.

    ``records`` (the command's ``done`` audit row) are committed in the same
    transaction as the row, so neither is recorded without the other.

    Blocks on disk and on the writer thread: call it from a thread (or use
    ``arecord_capture``) on the event loop.
    """
    name = camera if isinstance(camera, str) else camera.name
    stored = ImageStore(store.data_dir.images).put(result.image, result.format)
    row = capture_row(
        stored,
        result,
        name,
        actor_id=actor_id,
        actor_name=actor_name,
        terminal_id=terminal_id,
        signature_ids=signature_ids,
        run_id=run_id,
        step=step,
    )

    def append(tx: WriteTx) -> CaptureRecord:
        done = tx.append(CAPTURES, row)
        for record in records:
            apply_record(tx, record)
        return CaptureRecord(
            done.seq,
            done.ts,
            name,
            stored.sha256,
            stored.size,
            result.format,
            result.width,
            result.height,
            stored.path,
            done.digest.hex(),
        )

    return store.write(append)


async def arecord_capture(
    store: Store, result: CapturedImage, camera: str | Camera, **who: Any
) -> CaptureRecord:
    """``record_capture`` off the event loop (``who``: its keyword arguments)."""
    return await asyncio.to_thread(record_capture, store, result, camera, **who)


class StoreCaptureArchive:
    """The core's ``CaptureArchive`` on a ``Store``: image file first, then its row."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def archive(
        self,
        image: CapturedImage,
        camera: str,
        *,
        actor_id: str,
        actor_name: str,
        terminal_id: str,
        signature_ids: Sequence[str],
        run_id: str | None,
        step: str | None,
        records: Sequence[Record],
    ) -> ArchivedImage:
        done = await arecord_capture(
            self.store,
            image,
            camera,
            actor_id=actor_id,
            actor_name=actor_name,
            terminal_id=terminal_id,
            signature_ids=signature_ids,
            run_id=run_id,
            step=step,
            records=records,
        )
        return ArchivedImage(
            done.seq, done.sha256, done.size, done.format, done.width, done.height, str(done.path)
        )
