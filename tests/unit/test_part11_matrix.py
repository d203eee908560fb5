"""docs/part11-matrix.md is complete and true: a row for every requirement ID, every module
and test it names exists, and its OQ column agrees with the checks of ``hmi validate``."""

from __future__ import annotations

import re
from pathlib import Path

from hmi.validation.oq_checks import CHECKS

ROOT = Path(__file__).parents[2]
MATRIX = ROOT / "docs" / "part11-matrix.md"
IDS = ROOT / "docs" / "requirements-ids.txt"
ROW = re.compile(r"^\| ((?:SUP|REC|SIG|PWD|OPS)-\d+)\b")
TICKED = re.compile(r"`([^`]+)`")
PATH = re.compile(r"^((?:[\w.-]+/)*[\w.-]+\.(?:py|sql|md|toml))(?:::([\w.]+))?$")
MORE = re.compile(r"^::([\w.]+)$")
OQ_ID = re.compile(r"\b(?:OQ|IQ)-\d\d\b")


def requirement_ids() -> list[str]:
    lines = IDS.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def rows() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in MATRIX.read_text().splitlines():
        match = ROW.match(line)
        if match:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 5, f"{match.group(1)}: {len(cells)} columns, want 5"
            assert match.group(1) not in out, f"{match.group(1)} has two rows"
            out[match.group(1)] = cells
    return out


def references(cell: str, root: Path) -> list[tuple[Path, str | None]]:
    """(file, name) for each `path.py::name` and following `::name` in a cell."""
    found: list[tuple[Path, str | None]] = []
    current: Path | None = None
    for token in TICKED.findall(cell):
        token = token.split(" ")[0]
        path = PATH.match(token)
        more = MORE.match(token)
        if path:
            current = root / path.group(1)
            found.append((current, path.group(2)))
        elif more and current is not None:
            found.append((current, more.group(1)))
    return found


def test_every_requirement_has_a_row_and_no_row_is_unknown() -> None:
    ids = requirement_ids()
    assert len(ids) == len(set(ids)) >= 32
    table = rows()
    assert sorted(set(ids) - set(table)) == []
    assert sorted(set(table) - set(ids)) == []


def test_every_test_the_matrix_names_exists() -> None:
    missing = []
    for req, cells in rows().items():
        for path, name in references(cells[2], ROOT / "tests"):
            if not path.is_file():
                missing.append(f"{req}: {path.relative_to(ROOT)}")
            elif name and not re.search(rf"def {re.escape(name)}\(", path.read_text()):
                missing.append(f"{req}: {path.relative_to(ROOT)}::{name}")
    assert missing == []


def test_every_module_the_matrix_names_exists() -> None:
    missing = []
    for req, cells in rows().items():
        for path, name in references(cells[1], ROOT):
            if not path.is_file():
                missing.append(f"{req}: {path.relative_to(ROOT)}")
            elif name and name.split(".")[-1] not in path.read_text():
                missing.append(f"{req}: {path.relative_to(ROOT)}::{name}")
    assert missing == []


def test_the_oq_column_agrees_with_the_checks() -> None:
    table = rows()
    claimed: dict[str, set[str]] = {}
    for check in CHECKS:
        for req in check.requirements:
            claimed.setdefault(req, set()).add(check.id)
    claimed.setdefault("OPS-4", set()).add("IQ-01")
    named = {req: set(OQ_ID.findall(cells[3])) for req, cells in table.items()}
    assert {req: ids for req, ids in named.items() if ids} == claimed
