"""``hmi validate`` on this installation: IQ, every OQ check against a scratch plant, the JSON
and PDF reports; a failing or hanging check is reported as FAIL with exit status 1 (OPS-4)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from custos_testkit import DEMO_CONFIG

import hmi.validation.runner as runner
from hmi.cli import main
from hmi.core.config_hash import config_hash
from hmi.validation.oq import Check, CheckFailed
from hmi.validation.oq_checks import CHECKS
from hmi.validation.scratch import ScratchPlant

pytestmark = pytest.mark.timeout(150)

CHEAP_ARGON2 = "[argon2]\ntime_cost = 1\nmemory_kib = 8\nparallelism = 1\n"


@pytest.fixture
def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo plant as the OQ reference, with cheap password hashing (the rules unchanged)."""
    target = tmp_path / "reference"
    shutil.copytree(DEMO_CONFIG, target)
    security = (target / "security.toml").read_text()
    security = re.sub(r"\[argon2\][^\[]*", CHEAP_ARGON2 + "\n", security)
    (target / "security.toml").write_text(security)
    # A backup destination in the reference is never used: the OQ's backups stay in scratch.
    elsewhere = json.dumps(str(tmp_path / "site-backups"))
    with (target / "plant.toml").open("a") as f:
        f.write(f"\n[backup]\nto = {elsewhere}\nkeep = 3\n")
    monkeypatch.setattr(runner, "demo_config_dir", lambda: target)
    return target


def validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def pdf_text(path: Path) -> str:
    pypdf = pytest.importorskip("pypdf")
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def test_every_check_passes_and_the_reports_cover_every_claimed_requirement(
    tmp_path: Path, reference: Path
) -> None:
    out = tmp_path / "report"
    code, output = validate("--out", str(out), "--config", str(DEMO_CONFIG))
    assert code == 0, output
    assert f"{len(CHECKS) + 1} of {len(CHECKS) + 1} checks passed: PASS" in output

    oq = json.loads((out / "oq.json").read_text())
    assert oq["result"] == "PASS"
    assert [c["id"] for c in oq["checks"]] == ["IQ-01", *(c.id for c in CHECKS)]
    assert all(c["result"] == "PASS" and c["actual"] for c in oq["checks"])
    claimed = {req for c in CHECKS for req in c.requirements} | {"OPS-4"}
    assert set(oq["requirements"]) == claimed
    assert all(row["result"] == "PASS" for row in oq["requirements"].values())
    assert not Path(oq["scratch"]["directory"]).exists()  # the scratch instance is gone
    assert not (tmp_path / "site-backups").exists()
    assert re.search(r"[+-]\d\d:\d\d$", oq["started"])  # local time with its offset

    iq = json.loads((out / "iq.json").read_text())
    assert iq["configuration"]["sha256"] == config_hash(DEMO_CONFIG)
    assert iq["missing_dependencies"] == []
    names = {d["name"].lower() for d in iq["dependencies"]}
    assert {"custos", "duckdb", "textual", "pymodbus", "asyncua", "fpdf2"} <= names
    files = {f["path"]: f["sha256"] for f in iq["package_files"]}
    source = Path(runner.__file__)
    assert files["hmi/validation/runner.py"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert any(p.startswith("drivers/") for p in files)

    text = pdf_text(out / "validation-report.pdf")
    assert "Overall result: PASS" in text
    pages = len(re.findall(r"Page \d+ of (\d+)", text))
    assert pages >= 2 and f"Page {pages} of {pages}" in text
    for check in CHECKS:
        assert check.id in text
    assert "Reviewer (printed name)" in text and iq["package_hash"] in text
    # The OQ users' passwords are random, held in memory only, never written to the reports.
    password = re.compile(r"Oq[0-9a-f]{16}x7")
    for written in ((out / "oq.json").read_text(), (out / "iq.json").read_text(), text):
        assert not password.search(written)


async def _broken(plant: ScratchPlant) -> str:
    raise CheckFailed("the probe saw 41, not 42")


async def _hangs(plant: ScratchPlant) -> str:
    await asyncio.Event().wait()
    return "never"


def test_a_failing_and_a_hanging_check_show_fail_and_exit_1(
    tmp_path: Path, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = (
        CHECKS[0],
        Check("OQ-98", ("REC-1",), "Broken", "a check that sees the wrong value", "42", _broken),
        Check("OQ-99", ("SUP-6",), "Hangs", "a check that never ends", "an end", _hangs, 0.5),
    )
    monkeypatch.setattr(runner, "CHECKS", checks)
    out = tmp_path / "report"
    code, output = validate("--out", str(out), "--keep-scratch")
    assert code == 1, output
    assert "PASS  OQ-01" in output
    assert "FAIL  OQ-98" in output and "the probe saw 41, not 42" in output
    assert "FAIL  OQ-99" in output and "no result within 0.5 s" in output
    assert "3 of 4 checks passed" not in output and "2 of 4 checks passed: FAIL" in output

    oq = json.loads((out / "oq.json").read_text())
    assert oq["result"] == "FAIL"
    assert oq["requirements"]["REC-1"] == {"result": "FAIL", "checks": ["OQ-98"]}
    assert oq["requirements"]["SUP-6"]["result"] == "FAIL"
    assert oq["requirements"]["PWD-3"]["result"] == "PASS"
    scratch = Path(oq["scratch"]["directory"])
    assert oq["scratch"]["kept"] and (scratch / "data" / "hmi.duckdb").is_file()
    assert str(scratch) in output
    shutil.rmtree(scratch)
    text = pdf_text(out / "validation-report.pdf")
    assert "Overall result: FAIL (failed: OQ-98, OQ-99)" in text


def test_an_earlier_report_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "oq.json").write_text("earlier")
    code, output = validate("--out", str(out))
    assert code == 1
    assert "oq.json already exists" in output and str(out) in output
    assert (out / "oq.json").read_text() == "earlier"
    assert not (out / "iq.json").exists()


def test_a_missing_configuration_directory_is_named(tmp_path: Path) -> None:
    code, output = validate("--out", str(tmp_path / "r"), "--config", str(tmp_path / "nope"))
    assert code == 1
    assert "--config" in output and "nope" in output
    assert not (tmp_path / "r").exists()
