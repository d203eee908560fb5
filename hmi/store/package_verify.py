"""``hmi verify --package``: check an inspection package with nothing but the package.

Every check collects its problems rather than stopping at the first, so an
inspector sees each altered file, chain row and checkpoint at once. Without
the HMAC key the proof rests on Ed25519: the manifest (which fixes every
file's SHA-256) is signed, the checkpoints are signed, and the chain rows a
checkpoint vouches for must carry the digest it signed. With the plant's keys
(``keys_dir``) every exported chain is recomputed from its raw rows too, in
an in-memory DuckDB over the Parquet files, with the canonical form of
``hmi.store.verify``.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hmi.core.errors import DataDirectoryError
from hmi.store import package_files as pf
from hmi.store.anchors import Checkpoint, parse_heads
from hmi.store.history import verify_history
from hmi.store.keys import KeyRing, load_public_key, public_key_id, verify_signature
from hmi.store.tables import CAPTURES, CHAINED_TABLES, HISTORY_BATCHES
from hmi.store.verify import Problem, VerifyReport, verify_chain
from hmi.store.verify_images import IMAGE_EXTENSIONS, file_sha256

_IMAGE = re.compile(r"^images/([0-9a-f]{64})\.([a-z]+)$")


@dataclass
class PackageReport:
    path: Path
    problems: list[Problem] = field(default_factory=list)
    fingerprint: str | None = None
    files: int = 0
    rows: int = 0
    chains: int = 0
    checkpoints: int = 0
    images: int = 0
    recomputed: bool = False
    """True when the chains were recomputed with the plant's HMAC key."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, seq: int | None, message: str) -> None:
        self.problems.append(Problem(where, seq, message))

    def summary(self) -> str:
        key = f"key fingerprint {self.fingerprint or 'unknown'}"
        if not self.ok:
            return f"FAILED: {len(self.problems)} problem(s) in package {self.path}; {key}"
        how = "recomputed with the HMAC key" if self.recomputed else "linked to signed checkpoints"
        return (
            f"OK: package {self.path}: {self.files} listed files match the signed manifest; "
            f"{self.rows} records in {self.chains} chains {how}; {self.checkpoints} signed "
            f"checkpoints; {self.images} images; {key}"
        )


def verify_package(
    path: Path, *, keys_dir: Path | None = None, expect_fingerprint: str | None = None
) -> PackageReport:
    """Check the package at ``path`` (a directory or a .zip); see the module docstring."""
    report = PackageReport(path)
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="custos-package-") as tmp:
            try:
                pf.extract_zip(path, Path(tmp))
            except (pf.UnsafeZip, zipfile.BadZipFile, OSError) as exc:
                report.add(str(path), None, f"cannot be read as a package: {exc}")
                return report
            _verify_dir(Path(tmp), report, keys_dir, expect_fingerprint)
    elif path.is_dir():
        _verify_dir(path, report, keys_dir, expect_fingerprint)
    else:
        report.add(str(path), None, "is neither a package directory nor a zip file")
    return report


def _verify_dir(
    root: Path, report: PackageReport, keys_dir: Path | None, expect: str | None
) -> None:
    manifest_path = root / pf.MANIFEST
    try:
        data = manifest_path.read_bytes()
        manifest: dict[str, Any] = json.loads(data)
    except (OSError, ValueError) as exc:
        report.add(pf.MANIFEST, None, f"missing or unreadable: {exc}")
        return
    if not isinstance(manifest, dict) or manifest.get("format") != pf.FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        report.add(pf.MANIFEST, None, f"package format {found!r} is unknown")
        return
    public = _signature(root, data, manifest, report, expect)
    checkpoints = _checkpoints(root, public, report)
    hmac_key = _hmac_key(keys_dir, report) if keys_dir is not None else None
    con = duckdb.connect(":memory:")
    try:
        _files(root, manifest, report)
        integrity = manifest.get("integrity", {})
        if not integrity.get("ok", False):
            for line in integrity.get("problems", []) or ["(no detail)"]:
                report.add("integrity at export", None, f"FAILED: {line}")
        _chains(con, root, manifest, checkpoints, hmac_key, report)
        _images(con, root, report)
        _views(con, root, manifest, report)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.add(pf.MANIFEST, None, f"is not a valid package manifest ({exc!r})")
    finally:
        con.close()


def _signature(
    root: Path,
    data: bytes,
    manifest: dict[str, Any],
    report: PackageReport,
    expect: str | None,
) -> Ed25519PublicKey | None:
    try:
        public = load_public_key(root / pf.PUBLIC_KEY)
    except (OSError, ValueError, DataDirectoryError) as exc:
        report.add(pf.PUBLIC_KEY, None, f"missing or not an Ed25519 public key: {exc}")
        return None
    report.fingerprint = public_key_id(public)
    if manifest.get("public_key_fingerprint") != report.fingerprint:
        report.add(pf.MANIFEST, None, "names a different key fingerprint than the included key")
    if expect is not None and expect.strip().lower() != report.fingerprint:
        report.add(
            pf.PUBLIC_KEY,
            None,
            f"key fingerprint {report.fingerprint} is not the expected {expect.strip()}: "
            "this package was not signed with the plant's published key",
        )
    try:
        signature = bytes.fromhex((root / pf.SIGNATURE).read_text().strip())
    except (OSError, ValueError) as exc:
        report.add(pf.SIGNATURE, None, f"missing or unreadable: {exc}")
        return public
    if not verify_signature(public, signature, data):
        report.add(
            pf.SIGNATURE,
            None,
            "signature does not verify: manifest.json was changed after export",
        )
    return public


def _files(root: Path, manifest: dict[str, Any], report: PackageReport) -> None:
    listed: dict[str, dict[str, Any]] = manifest.get("files", {})
    present = set(pf.package_files(root))
    for rel, expected in sorted(listed.items()):
        path = root / rel
        if rel not in present:
            report.add(rel, None, "is listed in the manifest but missing from the package")
            continue
        sha, size = file_sha256(path)
        if size != expected.get("bytes") or sha != expected.get("sha256"):
            report.add(rel, None, "SHA-256 or size does not match the manifest (altered)")
    for rel in sorted(present - set(listed)):
        report.add(rel, None, "is not listed in the manifest (added)")
    report.files = len(listed)


def _checkpoints(
    root: Path, public: Ed25519PublicKey | None, report: PackageReport
) -> dict[int, Checkpoint]:
    """The valid signed checkpoints by seq; each bad one is a problem."""
    found: dict[int, Checkpoint] = {}
    for rel in (pf.CHECKPOINTS, pf.ANCHORS):
        path = root / rel
        lines = path.read_text("utf-8").splitlines() if path.is_file() else []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                cp = Checkpoint.from_line(line)
            except (ValueError, KeyError) as exc:
                report.add(rel, number, f"line {number} is not a checkpoint ({exc})")
                continue
            if public is None or not verify_signature(public, cp.signature, cp.message):
                report.add(rel, None, f"checkpoint {cp.seq}: signature does not verify")
                continue
            if cp.seq in found and found[cp.seq].to_line() != cp.to_line():
                report.add(rel, None, f"checkpoint {cp.seq} differs from its other copy")
            found.setdefault(cp.seq, cp)
    report.checkpoints = len(found)
    return found


def _hmac_key(keys_dir: Path, report: PackageReport) -> bytes | None:
    try:
        ring = KeyRing.load(keys_dir, need_signing=False)
    except DataDirectoryError as exc:
        report.add("keys", None, exc.message)
        return None
    if report.fingerprint is not None and ring.key_id != report.fingerprint:
        report.add("keys", None, f"the keys in {keys_dir} are not the keys of this package")
        return None
    report.recomputed = True
    return ring.hmac_key


def _chains(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    manifest: dict[str, Any],
    checkpoints: dict[int, Checkpoint],
    hmac_key: bytes | None,
    report: PackageReport,
) -> None:
    heads = [(cp.seq, parse_heads(cp.heads)) for cp in checkpoints.values()]
    for name, entry in sorted(manifest.get("chains", {}).items()):
        table = CHAINED_TABLES.get(name)
        if table is None or not entry.get("file"):
            if table is None:
                report.add(name, None, "is not a record chain this version knows")
            continue
        rel = str(entry["file"])
        if not (root / rel).is_file():
            continue  # already named as missing
        first, last = int(entry["first_seq"]), int(entry["last_seq"])
        previous = entry.get("previous_digest")
        try:
            con.execute(
                f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet(?)",
                [str(root / rel)],
            )
        except duckdb.Error as exc:
            report.add(rel, None, f"cannot be read: {str(exc).splitlines()[0]}")
            continue
        found = VerifyReport()
        digests = verify_chain(
            con,
            table,
            hmac_key,
            found,
            first=first,
            last=last,
            start_digest=bytes.fromhex(previous) if previous else b"",
        )
        report.problems.extend(found.problems)
        total = con.execute(f"SELECT count(*) FROM {name}").fetchone()
        if total is None or int(total[0]) != int(entry["rows"]) or len(digests) != last - first + 1:
            report.add(
                rel,
                None,
                f"holds {total[0] if total else 0} rows, the manifest says {entry['rows']}",
            )
        for cp_seq, cp_heads in heads:
            if name not in cp_heads:
                continue
            seq, digest = cp_heads[name]
            stored = digests.get(seq)
            if seq == first - 1 and previous is not None:
                stored = bytes.fromhex(previous)
            if first - 1 <= seq <= last and (stored is None or stored.hex() != digest):
                report.add(name, seq, f"row differs from the one checkpoint {cp_seq} vouches for")
        _covered(name, last, entry.get("covering_checkpoint"), checkpoints, report)
        if name == HISTORY_BATCHES.name and entry.get("values"):
            _history_values(con, root, entry["values"], report)
        report.rows += len(digests)
        report.chains += 1


def _history_values(
    con: duckdb.DuckDBPyConnection, root: Path, entry: dict[str, Any], report: PackageReport
) -> None:
    """Each exported history batch's values against the SHA-256 its chained row holds."""
    rel = str(entry["file"])
    if not (root / rel).is_file():
        return  # already named as missing
    try:
        con.execute(
            "CREATE OR REPLACE TABLE tag_history_values AS SELECT * FROM read_parquet(?)",
            [str(root / rel)],
        )
    except duckdb.Error as exc:
        report.add(rel, None, f"cannot be read: {str(exc).splitlines()[0]}")
        return
    found = VerifyReport()
    verify_history(con, found)
    report.problems.extend(found.problems)
    total = con.execute("SELECT count(*) FROM tag_history_values").fetchone()
    if total is None or int(total[0]) != int(entry["rows"]):
        report.add(
            rel, None, f"holds {total[0] if total else 0} rows, the manifest says {entry['rows']}"
        )


def _covered(
    name: str, last: int, cover: Any, checkpoints: dict[int, Checkpoint], report: PackageReport
) -> None:
    """The last exported row must be one a signed checkpoint in the package vouches for."""
    checkpoint = checkpoints.get(int(cover)) if cover is not None else None
    head = parse_heads(checkpoint.heads).get(name) if checkpoint is not None else None
    if head is None or head[0] != last:
        report.add(
            name,
            last,
            "no valid signed checkpoint in the package vouches for the last exported row",
        )


def _images(con: duckdb.DuckDBPyConnection, root: Path, report: PackageReport) -> None:
    named: set[str] = set()
    tables = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if CAPTURES.name in tables:
        named = {
            bytes(r[0]).hex() for r in con.execute(f"SELECT sha256 FROM {CAPTURES.name}").fetchall()
        }
    for rel in pf.package_files(root):
        if not rel.startswith("images/"):
            continue
        match = _IMAGE.match(rel)
        if match is None:
            report.add(rel, None, "is not named <sha256>.<format>")
            continue
        if file_sha256(root / rel)[0] != match.group(1):
            report.add(rel, None, "content does not match the SHA-256 it is named by (altered)")
        elif match.group(1) not in named:
            report.add(rel, None, "no capture record in the package names this image")
        report.images += 1
    view = root / "views" / "captures.parquet"
    try:
        listed = (
            con.execute("SELECT seq, sha256 FROM read_parquet(?)", [str(view)]).fetchall()
            if view.is_file()
            else []
        )
    except duckdb.Error:
        listed = []  # named by the file and row-count checks
    for seq, sha in listed:
        if sha and not any((root / f"images/{sha}.{e}").is_file() for e in IMAGE_EXTENSIONS):
            report.add(CAPTURES.name, int(seq), f"image images/{sha}.* is missing from the package")


def _csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as f:
        return max(0, sum(1 for _ in csv.reader(f)) - 1)


def _views(
    con: duckdb.DuckDBPyConnection, root: Path, manifest: dict[str, Any], report: PackageReport
) -> None:
    for name, entry in sorted(manifest.get("views", {}).items()):
        expected = int(entry["rows"])
        for key in ("csv", "parquet"):
            rel = str(entry[key])
            path = root / rel
            if not path.is_file():
                continue  # already named as missing
            try:
                if key == "csv":
                    count = _csv_rows(path)
                else:
                    row = con.execute(
                        "SELECT count(*) FROM read_parquet(?)", [str(path)]
                    ).fetchone()
                    count = int(row[0]) if row else 0
            except (duckdb.Error, csv.Error, UnicodeDecodeError) as exc:
                report.add(rel, None, f"cannot be read: {exc}")
                continue
            if count != expected:
                report.add(
                    rel, None, f"holds {count} rows of view {name}, the manifest says {expected}"
                )
