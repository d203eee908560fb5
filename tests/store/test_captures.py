"""SUP-3 and REC-1 for captures: images stored write-once under their SHA-256, a chained
``captures`` row per capture, and ``verify`` checking every image file against its row."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from custos_testkit import ORIGIN
from PIL import Image

from drivers.camera import CaptureResult, identify_image
from hmi.bootstrap import Services, open_services
from hmi.core.clock import FakeClock
from hmi.core.errors import RecordError
from hmi.records.images import ImageStore, ImageStoreError, record_capture
from hmi.store.db import Store
from hmi.store.tables import CAPTURES
from hmi.store.verify import VerifyReport, verify_data_dir

pytestmark = pytest.mark.timeout(30)
Tamper = Callable[..., list[tuple[Any, ...]]]
TABLE = CAPTURES.name
SHOT_TIME = datetime(2026, 1, 5, 9, 30, 15, 250_000, tzinfo=UTC)


def shot(shade: int, fmt: str = "PNG", size: tuple[int, int] = (32, 24)) -> CaptureResult:
    out = io.BytesIO()
    Image.new("L", size, shade).save(out, format=fmt)
    data = out.getvalue()
    kind, width, height = identify_image(data)
    settings = {"exposure_ms": 12.5, "focus_um": 1234.5, "note": "größe ✓"}
    return CaptureResult(data, kind, width, height, settings, SHOT_TIME)


def record(store: Store, result: CaptureResult, **who: Any):
    return record_capture(store, result, "MIC1.Camera", **who)


def problems(report: VerifyReport) -> list[tuple[str, int | None, str]]:
    return [(p.table, p.seq, p.message) for p in report.problems]


def test_image_is_stored_write_once_under_its_sha256_read_only(store: Store) -> None:
    first = shot(40)
    images = store.data_dir.images

    rec = record(store, first)
    again = record(store, first)
    tiff = record(store, shot(200, "TIFF"))

    sha = hashlib.sha256(first.image).hexdigest()
    assert rec.path == again.path == images / f"{sha}.png"
    assert (rec.seq, again.seq, tiff.seq) == (1, 2, 3)
    assert rec.path.read_bytes() == first.image and rec.size == len(first.image)
    assert tiff.path.suffix == ".tiff" and tiff.format == "tiff"
    for path in (rec.path, tiff.path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert sorted(p.name for p in images.iterdir()) == sorted([rec.path.name, tiff.path.name])
    assert ImageStore(images).read(sha, "png") == first.image


def test_an_altered_stored_image_is_never_replaced(store: Store) -> None:
    result = shot(90)
    rec = record(store, result)
    rec.path.chmod(0o644)
    rec.path.write_bytes(b"forged")

    with pytest.raises(ImageStoreError, match="no longer matches its name: it was altered"):
        record(store, result)

    assert rec.path.read_bytes() == b"forged"
    assert store.query(f"SELECT count(*) FROM {TABLE}") == [(1,)]
    with pytest.raises(ImageStoreError, match="was altered"):
        ImageStore(store.data_dir.images).read(rec.sha256, "png")


def test_unknown_format_is_refused_before_anything_is_written(store: Store) -> None:
    result = shot(10)
    odd = CaptureResult(result.image, "jpeg", 1, 1, {})  # type: ignore[arg-type]

    with pytest.raises(ImageStoreError, match="not 'jpeg'"):
        record(store, odd)

    assert not store.data_dir.images.exists() or not any(store.data_dir.images.iterdir())
    assert store.query(f"SELECT count(*) FROM {TABLE}") == [(0,)]


def test_capture_row_is_chained_and_listed_in_the_captures_view(
    store: Store, clock: FakeClock
) -> None:
    result = shot(120)
    rec = record(
        store,
        result,
        actor_id="op1",
        actor_name="Olga Operator",
        terminal_id="T1",
        signature_ids=("sig-1", "sig-2"),
        run_id="run-7",
        step="4 Capture image",
    )
    rows = store.query("SELECT * FROM captures")
    columns = [c for (c,) in store.query("SELECT column_name FROM (DESCRIBE captures)")]

    view = dict(zip(columns, rows[0], strict=True))
    assert view == {
        "seq": 1,
        "ts": clock.now(),
        "camera": "MIC1.Camera",
        "camera_time": SHOT_TIME,
        "sha256": rec.sha256,
        "size_bytes": len(result.image),
        "format": "png",
        "width": 32,
        "height": 24,
        "settings": '{"exposure_ms":12.5,"focus_um":1234.5,"note":"größe ✓"}',
        "actor_id": "op1",
        "actor_name": "Olga Operator",
        "terminal_id": "T1",
        "signature_ids": "sig-1,sig-2",
        "run_id": "run-7",
        "step": "4 Capture image",
        "image_file": f"images/{rec.sha256}.png",
        "record_digest": rec.record_digest,
    }
    assert json.loads(view["settings"]) == result.settings
    assert store.heads[TABLE].digest.hex() == rec.record_digest


def test_guard_triggers_refuse_update_and_delete(store: Store) -> None:
    record(store, shot(5))
    for sql in (f"UPDATE {TABLE} SET width = 1", f"DELETE FROM {TABLE}"):
        with pytest.raises(RecordError, match="guard_refusals"):
            store.write(lambda tx, sql=sql: tx.execute(sql))
    assert store.query(f"SELECT width FROM {TABLE}") == [(32,)]


# -- verify ------------------------------------------------------------------------------


@pytest.fixture
def captured(store: Store) -> tuple[Path, list[Any]]:
    """A closed data directory with three captures (two of them the same image)."""
    first, second = shot(60), shot(180, size=(16, 16))
    records = [record(store, first), record(store, second), record(store, first)]
    root = store.data_dir.root
    store.close()
    return root, records


def test_verify_passes_then_reports_a_deleted_image_file(captured) -> None:
    root, recs = captured
    report = verify_data_dir(root)
    assert report.ok, problems(report)
    assert report.images == 3 and report.notes == []
    assert report.summary().endswith("; 3 image files match their records")

    recs[1].path.unlink()

    report = verify_data_dir(root)
    assert problems(report) == [(TABLE, 2, f"image file {recs[1].path} is missing")]
    assert str(report.problems[0]).startswith("capture_records seq 2: image file ")


def test_verify_reports_an_altered_image_file(captured) -> None:
    root, recs = captured
    path = recs[0].path
    path.chmod(0o644)  # as an attacker would, to get past the read-only mode
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    forged = hashlib.sha256(data).hexdigest()

    report = verify_data_dir(root)

    message = (
        f"image file {path} was altered: it has SHA-256 {forged} and {len(data)} bytes; "
        f"the record says {recs[0].sha256} and {recs[0].size} bytes"
    )
    assert problems(report) == [(TABLE, 1, message), (TABLE, 3, message)]


def test_verify_reports_a_changed_captures_row_by_its_digest(captured, tamper: Tamper) -> None:
    root, _ = captured
    tamper(root, f"UPDATE {TABLE} SET width = 999 WHERE seq = 2")

    report = verify_data_dir(root)

    assert [(t, s) for t, s, _ in problems(report)] == [(TABLE, 2)]
    assert "digest does not match" in report.problems[0].message


def test_a_row_pointed_at_another_image_is_reported_and_the_original_is_a_note(
    captured, tamper: Tamper
) -> None:
    root, recs = captured
    tamper(root, f"UPDATE {TABLE} SET sha256 = unhex(?) WHERE seq = 2", [recs[0].sha256])

    report = verify_data_dir(root)

    assert [(t, s) for t, s, _ in problems(report)] == [(TABLE, 2)]
    assert report.notes == [
        f"image file {recs[1].path} is named by no capture (stored, then "
        "the capture was not recorded, e.g. a crash in between)"
    ]


def test_orphan_temporary_and_writable_files_are_notes_not_failures(captured) -> None:
    root, recs = captured
    images = root / "images"
    orphan = ImageStore(images).put(shot(250).image, "png")
    (images / ".0123456789abcdef-x.tmp").write_bytes(b"half")
    recs[1].path.chmod(0o644)

    report = verify_data_dir(root)

    assert report.ok, problems(report)
    assert report.notes == [
        f"image file {recs[1].path} (capture seq 2) is writable; it should be 0444",
        f"{images / '.0123456789abcdef-x.tmp'} is an unfinished temporary file "
        "(a capture was interrupted)",
        f"image file {orphan.path} is named by no capture (stored, then the capture was not "
        "recorded, e.g. a crash in between)",
    ]
    assert report.summary().endswith("; 3 image files match their records; 3 note(s)")


def test_start_up_check_reports_a_missing_image(services: Services, config_dir, clock) -> None:
    rec = record(services.store, shot(77))
    root = services.store.data_dir.root
    services.close()
    os.unlink(rec.path)

    reopened = open_services(root, config_dir, clock=clock, origin=ORIGIN)
    try:
        assert reopened.integrity is not None and not reopened.integrity.ok
        (detail,) = reopened.store.query(
            "SELECT detail FROM security_events WHERE event = 'integrity_check_failed'"
        )[0]
        assert f"capture_records seq 1: image file {rec.path} is missing" in detail
    finally:
        reopened.close()
