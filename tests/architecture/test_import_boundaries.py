"""Import boundaries from DESIGN.md: the core stays free of I/O libraries."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import hmi.core

FORBIDDEN_IN_CORE = ("textual", "duckdb", "pymodbus", "asyncua", "argon2", "pyarrow")


def _loaded_after_importing(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(out.stdout))


def test_core_imports_no_io_library():
    core = [f"hmi.core.{m.name}" for m in pkgutil.iter_modules(hmi.core.__path__)]
    assert "hmi.core.identity" in core and "hmi.core.esign" in core
    loaded = _loaded_after_importing(["hmi.core", *core])
    assert not loaded & set(FORBIDDEN_IN_CORE), loaded & set(FORBIDDEN_IN_CORE)


def test_drivers_base_and_codec_use_only_the_standard_library():
    loaded = _loaded_after_importing(["drivers.base", "drivers.codec"])
    assert not loaded & {*FORBIDDEN_IN_CORE, "hmi", "pydantic"}


def test_import_linter_contracts_hold():
    exe = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
           "sys.exit(lint_imports_command())"]
    result = subprocess.run(exe, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
