"""The inspection package's files: names, the file list with hashes, zip in and out.

Shared by the builder (``hmi.store.package``) and the verifier
(``hmi.store.package_verify``), so both agree on what is listed: every file
except ``manifest.json`` and ``manifest.sig`` themselves, by its path relative
to the package root with ``/`` separators.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from hmi.store.verify_images import file_sha256

FORMAT = 1
"""The package format version written into the manifest; the verifier refuses others."""

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
VERIFY_MD = "VERIFY.md"
SUMMARY = "SUMMARY.txt"
PUBLIC_KEY = "keys/checkpoint-signing.pub"
CHECKPOINTS = "checkpoints/checkpoints.jsonl"
ANCHORS = "checkpoints/anchors.log"
REPORTS = "reports"
UNLISTED = frozenset({MANIFEST, SIGNATURE})


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def package_files(root: Path) -> list[str]:
    """Every file under ``root`` a manifest must list, sorted."""
    return sorted(
        rel
        for rel in (relative(root, p) for p in root.rglob("*") if p.is_file())
        if rel not in UNLISTED
    )


def file_entries(root: Path) -> dict[str, dict[str, object]]:
    """path → {bytes, sha256} for every listed file."""
    entries: dict[str, dict[str, object]] = {}
    for rel in package_files(root):
        sha, size = file_sha256(root / rel)
        entries[rel] = {"bytes": size, "sha256": sha}
    return entries


def write_zip(root: Path, out: Path) -> None:
    """Zip the package directory ``root`` into ``out`` (deflated, sorted, relative names)."""
    names = sorted(relative(root, p) for p in root.rglob("*") if p.is_file())
    with zipfile.ZipFile(out, "x", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.write(root / name, name)


class UnsafeZip(ValueError):
    """A zip member's name would land outside the folder it is extracted into."""


def extract_zip(archive: Path, into: Path) -> None:
    """Extract ``archive`` into the empty folder ``into``, refusing absolute or ``..`` names."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise UnsafeZip(f"{archive}: member {info.filename!r} has an unsafe name")
        zf.extractall(into)
