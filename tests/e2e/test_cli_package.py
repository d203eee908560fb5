"""`hmi export-package` and `hmi verify --package`: a QA user exports a period, an inspector
checks it with nothing but the package; the export and its refusal are in the audit trail."""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from custos_testkit import ORIGIN, PLANT_PASSWORD, init_plant_data, write_config

from hmi.cli import main

pytestmark = pytest.mark.timeout(120)
TODAY = date.today()
PERIOD = ("--from", (TODAY - timedelta(days=1)).isoformat(), "--to", TODAY.isoformat())


def hmi(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pkg")
    cfg = write_config(root / "cfg")
    asyncio.run(init_plant_data(root / "data", cfg, ORIGIN))
    return root / "data", cfg


def export(plant: tuple[Path, Path], user: str, out: Path, *period: str) -> Result:
    data, cfg = plant
    return hmi(
        "export-package",
        "--data",
        str(data),
        "--config",
        str(cfg),
        "--user",
        user,
        "--password-stdin",
        *(period or PERIOD),
        "--out",
        str(out),
        stdin=PLANT_PASSWORD + "\n",
    )


def audit(data: Path, action: str) -> list[tuple[str, str, str, str]]:
    con = duckdb.connect(str(data / "hmi.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT outcome, actor_id, target, detail FROM audit_records WHERE action = ? "
            "ORDER BY seq",
            [action],
        ).fetchall()
    finally:
        con.close()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def test_qa_exports_and_an_inspector_verifies(plant: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "inspection"
    result = export(plant, "qa1", out)
    assert result.exit_code == 0, result.output
    sha = re.search(r"manifest SHA-256 ([0-9a-f]{64})", result.output)
    fingerprint = re.search(r"Key fingerprint ([0-9a-f]{32})", result.output)
    assert sha and fingerprint

    checked = hmi("verify", "--package", str(out), "--expect-fingerprint", fingerprint.group(1))
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("OK: package ") and fingerprint.group(1) in checked.output
    wrong = hmi("verify", "--package", str(out), "--expect-fingerprint", "0" * 32)
    assert wrong.exit_code == 1 and "is not the expected " + "0" * 32 in wrong.output
    keyed = hmi("verify", "--package", str(out), "--keys", str(plant[0] / "keys"))
    assert keyed.exit_code == 0 and "recomputed with the HMAC key" in keyed.output

    rows = audit(plant[0], "package_exported")
    done = [r for r in rows if r[0] == "done" and str(out) in r[2]]
    assert len(done) == 1
    _, actor, target, detail = done[0]
    assert actor == "qa1" and target == f"package:{out}"
    assert sha.group(1) in detail and "integrity OK" in detail and " files;" in detail


def test_zip_through_the_cli(plant: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "inspection.zip"
    assert export(plant, "qa1", out).exit_code == 0
    checked = hmi("verify", "--package", str(out))
    assert checked.exit_code == 0, checked.output


def test_an_operator_is_refused_and_the_refusal_recorded(
    plant: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "refused"
    result = export(plant, "op1", out)
    assert result.exit_code == 1
    assert "may not export records" in result.output
    assert not out.exists()
    refused = [r for r in audit(plant[0], "package_exported") if r[0] == "refused"]
    assert [(r[1], r[2]) for r in refused] == [("op1", f"package:{out}")]


def test_bad_options_are_named(plant: tuple[Path, Path], tmp_path: Path) -> None:
    bad = export(plant, "qa1", tmp_path / "x", "--from", "yesterday", "--to", "2026-01-01")
    assert bad.exit_code == 2 and "--from 'yesterday' is not a date" in bad.output
    backwards = export(plant, "qa1", tmp_path / "x", "--from", "2026-01-05", "--to", "2026-01-04")
    assert backwards.exit_code == 2 and "is not after --from 2026-01-05" in backwards.output
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("mine")
    result = export(plant, "qa1", busy)
    assert result.exit_code == 1 and "is not an empty directory" in result.output
    assert (busy / "keep").read_text() == "mine"
    only = hmi("verify", "--expect-fingerprint", "ab")
    assert only.exit_code == 2 and "only apply with --package" in only.output
    missing = hmi("verify", "--package", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_failed_records_are_exported_loudly_and_exit_1(
    plant: tuple[Path, Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(plant[0], data)
    drop_and_update = [
        "DROP TRIGGER security_event_records_no_update ON security_event_records",
        "UPDATE security_event_records SET detail = 'rewritten' WHERE seq = 2",
    ]
    con = duckdb.connect(str(data / "hmi.duckdb"))
    try:
        for sql in drop_and_update:
            con.execute(sql)
    finally:
        con.close()
    out = tmp_path / "failed"
    result = export((data, plant[1]), "qa1", out)
    assert result.exit_code == 1, result.output
    assert "FAILED: the records did not verify" in result.output
    assert "security_event_records seq 2: digest does not match" in result.output
    assert "FAILED - THE RECORDS DID NOT VERIFY" in (out / "SUMMARY.txt").read_text()
    checked = hmi("verify", "--package", str(out))
    assert checked.exit_code == 1 and "integrity at export: FAILED" in checked.output
    done = [r for r in audit(data, "package_exported") if r[2] == f"package:{out}"]
    assert len(done) == 1 and done[0][0] == "done" and "integrity FAILED" in done[0][3]
