"""`hmi demo` (OPS-1): simulators, demo records and users, runtime, live values in a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(120)


def test_demo_runs_prints_users_and_live_values_and_its_records_verify(tmp_path: Path):
    data = tmp_path / "demo-data"
    hmi = Path(sys.executable).with_name("hmi")
    out = subprocess.run(
        [str(hmi), "demo", "--data", str(data), "--seconds", "5"],
        capture_output=True,
        text=True,
        timeout=100,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    assert "operator    Valve-2026" in out.stdout
    live = [line for line in out.stdout.splitlines() if line.startswith("BR101.TEMP_PV")]
    assert live and "GOOD" in live[-1]
    assert "plaintext" not in out.stderr
    report = verify_data_dir(data)
    assert report.ok, report.problems
    assert report.rows["esignature_records"] == 4  # the administrator signed each demo account
