"""``hmi validate``: IQ, then the OQ checks on a scratch instance, then the reports.

The scratch instance is a new temporary directory (data directory, a copy of
the reference configuration, simulators on free ports of 127.0.0.1): the
kit never opens a real data directory. It is deleted afterwards unless the
caller keeps it for inspection.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hmi.bootstrap import local_origin
from hmi.core.config_hash import config_hash
from hmi.core.errors import HmiError
from hmi.demo import demo_config_dir
from hmi.validation.iq import installation_qualification
from hmi.validation.oq import Check, CheckResult, requirement_results, run_checks
from hmi.validation.oq_checks import CHECKS
from hmi.validation.report_pdf import write_report
from hmi.validation.scratch import scratch_plant

IQ_JSON = "iq.json"
OQ_JSON = "oq.json"
REPORT_PDF = "validation-report.pdf"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0


class ValidationError(HmiError):
    title = "Validation not run"


@dataclass
class ValidationRun:
    out: Path
    iq: dict[str, Any]
    oq: dict[str, Any]
    results: list[CheckResult]
    files: list[Path]
    scratch: Path | None
    """The scratch directory if it was kept, else None."""

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValidationError(f"--out {out}: exists and is not a directory.")
    for name in (IQ_JSON, OQ_JSON, REPORT_PDF):
        if (out / name).exists():
            raise ValidationError(
                f"--out {out}: {name} already exists; choose a new directory so no earlier "
                "report is overwritten."
            )


def iq_result(iq: dict[str, Any], started: str, seconds: float) -> CheckResult:
    missing = iq["missing_dependencies"]
    passed = not missing and bool(iq["package_files"])
    actual = (
        f"{len(iq['dependencies'])} distributions, missing: {', '.join(missing) or 'none'}; "
        f"{len(iq['package_files'])} product files, combined SHA-256 {iq['package_hash']}; "
        f"configuration SHA-256 {iq['configuration']['sha256'] or 'not given'}"
    )
    return CheckResult(
        "IQ-01",
        ("OPS-4",),
        "Installation",
        "Record Python, platform, every installed dependency, the hash of every product file "
        "and of the configuration.",
        "Every dependency is installed; every product file and the configuration are hashed.",
        actual,
        passed,
        started,
        round(seconds, 3),
    )


async def _operational(
    checks: Sequence[Check], scratch: Path, reference: Path, notes: list[str]
) -> list[CheckResult]:
    plant_cm = scratch_plant(scratch, reference, START_TIMEOUT_S)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        plant = await asyncio.wait_for(plant_cm.__aenter__(), START_TIMEOUT_S)
    except Exception as exc:
        reason = f"the scratch plant did not start: {type(exc).__name__}: {exc}"
        return [
            CheckResult(
                c.id, c.requirements, c.title, c.description, c.expected, reason, False, started, 0
            )
            for c in checks
        ]
    try:
        return await run_checks(checks, plant)
    finally:
        try:
            await asyncio.wait_for(plant_cm.__aexit__(None, None, None), STOP_TIMEOUT_S)
        except Exception as exc:
            # The checks are done and their results stand; say why the plant did not stop.
            notes.append(f"the scratch plant did not stop cleanly: {type(exc).__name__}: {exc}")


async def run_validation(
    out: Path,
    config: Path | None = None,
    *,
    reference: Path | None = None,
    checks: Sequence[Check] | None = None,
    keep_scratch: bool = False,
) -> ValidationRun:
    """Run IQ and OQ and write iq.json, oq.json and the PDF report into ``out``.

    ``reference`` is the plant configuration the OQ runs (default: the demo plant the
    simulators implement); ``checks`` default to every OQ check.
    """
    _check_out(out)
    if reference is None:
        try:
            reference = demo_config_dir()
        except HmiError:
            raise ValidationError(
                "The OQ's reference configuration (config/demo) was not found: run "
                "`hmi validate` from the product folder, which holds config/demo."
            ) from None
    checks = CHECKS if checks is None else checks
    if config is not None and not config.is_dir():
        raise ValidationError(f"--config {config}: not a directory.")
    started = _now()
    t0 = time.monotonic()
    iq = installation_qualification(config)
    iq["reference_configuration"] = {
        "directory": str(reference.resolve()),
        "sha256": config_hash(reference),
    }
    results = [
        iq_result(iq, datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic() - t0)
    ]
    scratch = Path(tempfile.mkdtemp(prefix="custos-oq-"))
    notes: list[str] = []
    try:
        results += await _operational(checks, scratch, reference, notes)
    finally:
        if not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    origin = local_origin("validation")
    oq = {
        "run_id": str(uuid.uuid4()),
        "product": iq["product"],
        "host": iq["platform"]["host"],
        "ran_by": origin.source,
        "started": started,
        "finished": _now(),
        "reference_configuration": iq["reference_configuration"],
        "configuration_sha256": iq["configuration"]["sha256"],
        "package_hash": iq["package_hash"],
        "scratch": {"directory": str(scratch), "kept": keep_scratch},
        "result": "PASS" if all(r.passed for r in results) else "FAIL",
        "requirements": requirement_results(results),
        "checks": [r.as_json() for r in results],
        "notes": notes,
    }
    out.mkdir(parents=True, exist_ok=True)
    files = [out / IQ_JSON, out / OQ_JSON, out / REPORT_PDF]
    files[0].write_text(json.dumps(iq, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files[1].write_text(json.dumps(oq, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(files[2], iq, oq, results)
    return ValidationRun(out, iq, oq, results, files, scratch if keep_scratch else None)
