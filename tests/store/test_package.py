"""The inspection package (REC-2, REC-5/6, 11.10(b)): export a period, verify it with nothing
but the package, and see every kind of tampering named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hmi.core.clock import FakeClock
from hmi.core.errors import PackageError
from hmi.store import package_files as pf
from hmi.store.db import Store
from hmi.store.package import Exporter, PackageResult, Period, build_package
from hmi.store.package_verify import PackageReport, verify_package
from hmi.store.tables import AUDIT
from hmi.store.verify_images import file_sha256

pytestmark = pytest.mark.timeout(60)
Tamper = Callable[..., list[tuple[Any, ...]]]

PERIOD = Period(
    datetime(2026, 1, 5, 8, 0, 20, tzinfo=UTC), datetime(2026, 1, 5, 8, 1, 10, tzinfo=UTC)
)
WHO = Exporter("qa1", "Quinn Quality")


def export(data: Path, out: Path, **kw: Any) -> PackageResult:
    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    with Store.open(data, clock=clock) as store:
        return build_package(store, out, PERIOD, WHO, plant="Test plant", **kw)


def altered(body: bytes) -> bytes:
    """One cell's last character changed (the byte before the final newline)."""
    return body[:-2] + (b"Y" if body[-2:-1] != b"Y" else b"Z") + body[-1:]


def problems(report: PackageReport) -> list[str]:
    return [str(p) for p in report.problems]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One package exported from a filled data directory: (package dir, keys dir, fingerprint)."""
    from tests.store.conftest import fill_store

    root = tmp_path_factory.mktemp("pkg")
    clock = FakeClock()
    fill_store(Store.create(root / "data", clock=clock), clock)
    result = export(root / "data", root / "package")
    assert result.integrity_ok, result.integrity
    return root / "package", root / "data" / "keys", result.fingerprint


@pytest.fixture
def package(exported: tuple[Path, Path, str], tmp_path: Path) -> Path:
    """A private copy of the exported package to tamper with."""
    copy = tmp_path / "package"
    shutil.copytree(exported[0], copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


def manifest(package: Path) -> dict[str, Any]:
    return json.loads((package / pf.MANIFEST).read_text())


def test_package_holds_views_chains_images_checkpoints_and_verifies(
    exported: tuple[Path, Path, str],
) -> None:
    package, keys, fingerprint = exported
    m = manifest(package)
    assert m["period"]["from"] == PERIOD.start.isoformat()
    assert m["generated"]["by_id"] == "qa1" and m["integrity"]["ok"] is True
    audit = m["chains"][AUDIT.name]
    assert audit["first_seq"] > 1 and audit["previous_digest"]
    assert (package / "views" / "audit_trail.csv").is_file()
    assert (package / "views" / "users.parquet").is_file()
    assert m["views"]["audit_trail"]["rows"] > 0
    assert m["images"] > 0 and any(package.glob("images/*.png"))
    assert m["checkpoints"] and (package / pf.PUBLIC_KEY).is_file()
    assert not (package / "keys" / "hmac.key").exists()
    assert "Integrity at export: OK" in (package / pf.SUMMARY).read_text()
    assert "hmi verify --package" in (package / pf.VERIFY_MD).read_text()

    report = verify_package(package, expect_fingerprint=fingerprint)
    assert report.ok, problems(report)
    assert report.fingerprint == fingerprint and fingerprint in report.summary()
    with_keys = verify_package(package, keys_dir=keys)
    assert with_keys.ok and with_keys.recomputed, problems(with_keys)


def test_zip_package_verifies_and_a_tampered_zip_fails(filled_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "inspection.zip"
    result = export(filled_dir, out)
    assert out.is_file() and result.integrity_ok
    assert verify_package(out, keys_dir=filled_dir / "keys").ok

    tampered = tmp_path / "tampered.zip"
    import zipfile

    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "views/audit_trail.csv":
                body = altered(body)
            dst.writestr(info, body)
    assert "views/audit_trail.csv: SHA-256 or size does not match the manifest (altered)" in (
        problems(verify_package(tampered))
    )


def test_a_csv_cell_changed(package: Path) -> None:
    path = package / "views" / "audit_trail.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("actor_id", "someone_", 1)
    path.write_text("".join(lines))
    assert problems(verify_package(package)) == [
        "views/audit_trail.csv: SHA-256 or size does not match the manifest (altered)"
    ]


def test_a_parquet_row_deleted(package: Path) -> None:
    path = package / "views" / "audit_trail.parquet"
    rows = manifest(package)["views"]["audit_trail"]["rows"]
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{path}') WHERE seq <> "
        f"(SELECT min(seq) FROM read_parquet('{path}'))) TO '{path}.new' (FORMAT parquet)"
    )
    con.close()
    Path(f"{path}.new").replace(path)
    found = problems(verify_package(package))
    assert (
        "views/audit_trail.parquet: SHA-256 or size does not match the manifest (altered)" in found
    )
    assert (
        f"views/audit_trail.parquet: holds {rows - 1} rows of view audit_trail, "
        f"the manifest says {rows}" in found
    )


def test_an_image_byte_flipped(package: Path) -> None:
    image = sorted(package.glob("images/*.png"))[0]
    body = bytearray(image.read_bytes())
    body[len(body) // 2] ^= 0x01
    image.write_bytes(bytes(body))
    rel = f"images/{image.name}"
    assert problems(verify_package(package)) == [
        f"{rel}: SHA-256 or size does not match the manifest (altered)",
        f"{rel}: content does not match the SHA-256 it is named by (altered)",
    ]


def test_a_file_added_and_a_file_removed(package: Path) -> None:
    (package / "views" / "extra.csv").write_text("a,b\n1,2\n")
    assert problems(verify_package(package)) == [
        "views/extra.csv: is not listed in the manifest (added)"
    ]
    (package / "views" / "extra.csv").unlink()
    (package / "views" / "security_events.csv").unlink()
    assert problems(verify_package(package)) == [
        "views/security_events.csv: is listed in the manifest but missing from the package"
    ]


def test_manifest_edited_with_its_hash_fixed_up_fails_the_signature(package: Path) -> None:
    path = package / "views" / "audit_trail.csv"
    path.write_bytes(altered(path.read_bytes()))
    m = manifest(package)
    sha, size = file_sha256(path)
    m["files"]["views/audit_trail.csv"] = {"bytes": size, "sha256": sha}
    (package / pf.MANIFEST).write_text(json.dumps(m, indent=1, sort_keys=True) + "\n")
    assert problems(verify_package(package)) == [
        "manifest.sig: signature does not verify: manifest.json was changed after export"
    ]


def test_manifest_resigned_with_another_key_fails_the_fingerprint_check(
    package: Path, exported: tuple[Path, Path, str]
) -> None:
    fingerprint = exported[2]
    other = Ed25519PrivateKey.generate()
    public_pem = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (package / pf.PUBLIC_KEY).write_bytes(public_pem)
    from hmi.store.keys import public_key_id

    m = manifest(package)
    m["public_key_fingerprint"] = public_key_id(other.public_key())
    m["files"] = pf.file_entries(package)
    data = (json.dumps(m, indent=1, sort_keys=True) + "\n").encode()
    (package / pf.MANIFEST).write_bytes(data)
    (package / pf.SIGNATURE).write_text(other.sign(data).hex() + "\n")

    found = problems(verify_package(package, expect_fingerprint=fingerprint))
    assert found[0] == (
        f"keys/checkpoint-signing.pub: key fingerprint {public_key_id(other.public_key())} is "
        f"not the expected {fingerprint}: this package was not signed with the plant's "
        "published key"
    )
    # the forged key cannot sign the plant's checkpoints either
    assert any("signature does not verify" in p and "checkpoints" in p for p in found)


def test_a_chained_row_changed_fails_the_recompute_at_its_seq(
    package: Path, exported: tuple[Path, Path, str]
) -> None:
    path = package / "chains" / f"{AUDIT.name}.parquet"
    first = manifest(package)["chains"][AUDIT.name]["first_seq"]
    target = first + 1
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN seq = {target} THEN 'changed' ELSE action END AS "
        f"action) FROM read_parquet('{path}') ORDER BY seq) TO '{path}.new' (FORMAT parquet)"
    )
    con.close()
    Path(f"{path}.new").replace(path)
    found = problems(verify_package(package, keys_dir=exported[1]))
    assert (
        f"chains/{AUDIT.name}.parquet: SHA-256 or size does not match the manifest (altered)"
        in (found)
    )
    assert any(p.startswith(f"{AUDIT.name} seq {target}: digest does not match") for p in found)


def test_a_checkpoint_edited(package: Path) -> None:
    path = package / pf.CHECKPOINTS
    lines = path.read_text().splitlines()
    cp = json.loads(lines[0])
    cp["heads"] = (
        cp["heads"].replace(":1:", ":2:", 1) if ":1:" in cp["heads"] else cp["heads"] + ";x:1:00"
    )
    lines[0] = json.dumps(cp, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    found = problems(verify_package(package))
    assert f"{pf.CHECKPOINTS}: SHA-256 or size does not match the manifest (altered)" in found
    assert f"{pf.CHECKPOINTS}: checkpoint {cp['seq']}: signature does not verify" in found


def test_failed_records_are_exported_and_say_failed(
    filled_dir: Path, tmp_path: Path, tamper: Tamper
) -> None:
    tamper(
        filled_dir,
        f"UPDATE {AUDIT.name} SET action = 'rewritten' WHERE seq = "
        f"(SELECT min(seq) FROM {AUDIT.name} WHERE ts >= TIMESTAMPTZ '{PERIOD.start.isoformat()}')",
    )
    result = export(filled_dir, tmp_path / "package")
    assert not result.integrity_ok
    assert any("digest does not match" in line for line in result.integrity)
    assert manifest(tmp_path / "package")["integrity"]["ok"] is False
    summary = (tmp_path / "package" / pf.SUMMARY).read_text()
    assert "FAILED - THE RECORDS DID NOT VERIFY AT EXPORT" in summary
    report = verify_package(tmp_path / "package")
    assert not report.ok
    assert problems(report)[0].startswith("integrity at export: FAILED: ")


def test_extra_documents_are_listed_and_signed(filled_dir: Path, tmp_path: Path) -> None:
    def report_doc(reports: Path) -> list[Path]:
        path = reports / "batch-report.txt"
        path.write_text("batch report\n")
        return [path]

    out = tmp_path / "package"
    export(filled_dir, out, extras=[report_doc])
    m = manifest(out)
    assert m["reports"] == ["reports/batch-report.txt"]
    assert "reports/batch-report.txt" in m["files"]
    assert verify_package(out).ok


def test_output_must_be_new_or_empty(filled_dir: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep me")
    with pytest.raises(PackageError, match="busy exists and is not an empty directory"):
        export(filled_dir, busy)
    assert (busy / "x").read_text() == "keep me"
    (tmp_path / "old.zip").write_text("keep")
    with pytest.raises(PackageError, match=r"old\.zip already exists"):
        export(filled_dir, tmp_path / "old.zip")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(filled_dir, empty).integrity_ok and (empty / pf.MANIFEST).is_file()


def test_a_chained_row_deleted_is_a_gap_without_the_keys(package: Path) -> None:
    path = package / "chains" / f"{AUDIT.name}.parquet"
    first = manifest(package)["chains"][AUDIT.name]["first_seq"]
    gone = first + 2
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{path}') WHERE seq <> {gone} ORDER BY seq) "
        f"TO '{path}.new' (FORMAT parquet)"
    )
    con.close()
    Path(f"{path}.new").replace(path)
    found = problems(verify_package(package))
    assert f"{AUDIT.name} seq {gone + 1}: row {gone} is missing before this row (deleted)" in found


def test_a_period_without_records_is_an_empty_package_that_verifies(
    filled_dir: Path, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    quiet = Period(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    with Store.open(filled_dir, clock=clock) as store:
        result = build_package(store, tmp_path / "quiet", quiet, WHO, plant="Test plant")
    assert result.integrity_ok
    m = manifest(tmp_path / "quiet")
    assert all(c["rows"] == 0 for c in m["chains"].values())
    assert m["views"]["audit_trail"]["rows"] == 0 and m["views"]["users"]["rows"] >= 0
    assert (
        "audit_records: no records in the period" in (tmp_path / "quiet" / pf.SUMMARY).read_text()
    )
    assert verify_package(tmp_path / "quiet").ok


def test_a_zip_with_an_unsafe_name_or_a_garbled_manifest_is_refused(
    package: Path, tmp_path: Path
) -> None:
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    found = problems(verify_package(evil))
    assert len(found) == 1 and "member '../outside.txt' has an unsafe name" in found[0]
    assert not (tmp_path / "outside.txt").exists()

    (package / pf.MANIFEST).write_text("[1, 2]")
    assert problems(verify_package(package)) == ["manifest.json: package format None is unknown"]
    (package / pf.MANIFEST).write_text('{"format": 1, "files": 3}')
    found = problems(verify_package(package))
    assert any(p.startswith("manifest.json: is not a valid package manifest") for p in found)


def test_a_history_value_changed_is_named_by_its_batch(package: Path) -> None:
    values = manifest(package)["chains"]["tag_history_batch_records"]["values"]
    assert values["rows"] > 0
    path = package / values["file"]
    con = duckdb.connect()
    batch, idx, tag = con.execute(
        f"SELECT batch_seq, idx, tag FROM read_parquet('{path}') ORDER BY batch_seq, idx LIMIT 1"
    ).fetchone()
    con.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN batch_seq = {batch} AND idx = {idx} THEN 'edited' "
        f"ELSE reason END AS reason) FROM read_parquet('{path}') ORDER BY batch_seq, idx) "
        f"TO '{path}.new' (FORMAT parquet)"
    )
    con.close()
    Path(f"{path}.new").replace(path)
    found = problems(verify_package(package))
    assert (
        f"tag_history_batch_records seq {batch}: history row {idx} ({tag}) does not match the "
        "batch (changed)" in found
    )


def test_an_extra_document_outside_reports_stops_the_export(
    filled_dir: Path, tmp_path: Path
) -> None:
    def stray(reports: Path) -> list[Path]:
        path = reports.parent / "stray.txt"
        path.write_text("not a report")
        return [path]

    out = tmp_path / "package"
    with pytest.raises(PackageError, match=r"extra document 'stray' returned .*stray\.txt"):
        export(filled_dir, out, extras=[stray])
    assert not out.exists() and not (tmp_path / ".partial-package").exists()
