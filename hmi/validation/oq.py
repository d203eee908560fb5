"""Operational qualification: checks, their results, and a runner that bounds each one.

A check is a coroutine run against the scratch plant; it returns what it saw
(the *actual* evidence) or raises ``CheckFailed`` with what it saw instead.
Any other exception, and a check that does not finish within its time limit,
is a failure too: the kit reports a hang as FAIL instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from hmi.validation.scratch import ScratchPlant

DEFAULT_TIMEOUT_S = 60.0


class CheckFailed(Exception):
    """The check ran and saw something other than what it expects; the message says what."""


def expect(condition: object, actual: str) -> None:
    """Fail the check with ``actual`` as the evidence unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(actual)


@dataclass(frozen=True)
class Check:
    id: str
    requirements: tuple[str, ...]
    title: str
    description: str
    expected: str
    run: Callable[[ScratchPlant], Awaitable[str]]
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class CheckResult:
    id: str
    requirements: tuple[str, ...]
    title: str
    description: str
    expected: str
    actual: str
    passed: bool
    started_at: str
    duration_s: float

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requirements"] = list(self.requirements)
        data["result"] = self.result
        return data


async def run_check(check: Check, plant: ScratchPlant) -> CheckResult:
    started = datetime.now(UTC)
    t0 = time.monotonic()
    try:
        actual = await asyncio.wait_for(check.run(plant), check.timeout_s)
        passed = True
    except TimeoutError:
        actual, passed = f"no result within {check.timeout_s:g} s (the check was stopped)", False
    except CheckFailed as exc:
        actual, passed = str(exc), False
    except Exception as exc:
        actual, passed = f"unexpected {type(exc).__name__}: {exc}", False
    return CheckResult(
        check.id,
        check.requirements,
        check.title,
        check.description,
        check.expected,
        actual,
        passed,
        started.isoformat(timespec="seconds"),
        round(time.monotonic() - t0, 3),
    )


async def run_checks(checks: Sequence[Check], plant: ScratchPlant) -> list[CheckResult]:
    """Every check in order; one failing never stops the others."""
    return [await run_check(check, plant) for check in checks]


def requirement_results(results: Sequence[CheckResult]) -> dict[str, dict[str, Any]]:
    """Requirement ID → PASS only if every check that claims it passed, with those checks."""
    table: dict[str, dict[str, Any]] = {}
    for r in results:
        for req in r.requirements:
            row = table.setdefault(req, {"result": "PASS", "checks": []})
            row["checks"].append(r.id)
            if not r.passed:
                row["result"] = "FAIL"
    return dict(sorted(table.items(), key=lambda kv: _requirement_order(kv[0])))


def _requirement_order(req: str) -> tuple[int, str, int]:
    families = ("SUP", "REC", "SIG", "PWD", "OPS")
    family, _, number = req.partition("-")
    rank = families.index(family) if family in families else len(families)
    return rank, family, int(number) if number.isdigit() else 0
