"""``python -m bench [names...]``: run the benchmarks, each in its own process.

Each ``bench/bench_<name>.py`` defines ``run() -> dict``. A bench runs in a
child interpreter so that a crash, a hang or a leaked thread in one cannot
stop or skew the others; a child that outlives its timeout is killed with its
whole process group (servers it started included).

The machines these run on are noisy (±30% from run to run), so a bench is
expected to measure its own baseline in the same run and report ratios
against it; absolute figures are printed too, for orders of magnitude. The
expected shape of a result is::

    {"name": str,
     "figures": {label: number | str | dict, ...},
     "goals": {goal: {"target": ..., "measured": ..., "met": bool}, ...}}

but whatever dict comes back is printed and recorded as it is.

Results are merged into ``bench/out/results.json`` (one entry per bench, so
running one bench keeps the others' last results). ``bench/out/`` is output,
not source. Exit status: 0 all goals met, 1 a goal was not met, 2 a bench
failed (crashed, timed out, returned nothing usable).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
RESULTS = OUT_DIR / "results.json"
DEFAULT_TIMEOUT = 300.0
TAIL = 2000


def discover() -> dict[str, str]:
    """Short name → module, for every ``bench_*.py`` next to this file."""
    return {
        p.stem.removeprefix("bench_"): f"bench.{p.stem}"
        for p in sorted(BENCH_DIR.glob("bench_*.py"))
    }


# -- the child side ---------------------------------------------------------


def _child(module: str, out_path: str) -> int:
    """Import one bench, run it, write its result as JSON to ``out_path``.

    The result goes to a file rather than stdout so a bench may print (or a
    library may log) whatever it likes without corrupting the result.
    """
    import importlib

    mod = importlib.import_module(module)
    result = mod.run()
    Path(out_path).write_text(json.dumps(result, default=repr, indent=1), "utf-8")
    return 0


# -- the parent side ----------------------------------------------------------


def _tail(text: str) -> str:
    return text if len(text) <= TAIL else "…" + text[-TAIL:]


def run_one(name: str, module: str, timeout: float) -> dict[str, Any]:
    """Run one bench in a child process; always returns an entry, never raises."""
    fd, out_path = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".json")
    os.close(fd)
    started = time.monotonic()
    entry: dict[str, Any] = {
        "bench": name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "--child", module, out_path],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # own process group: a timeout kills what it spawned too
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            # Something outside the group (its own session) still holds the pipes: give up on
            # its output rather than hang the whole run.
            proc.kill()
            stdout, stderr = "", "(output lost: a process outside the group kept the pipes open)"
        entry["status"] = "timeout"
        entry["error"] = f"killed after {timeout:.0f} s"
    else:
        entry["status"] = "ok" if proc.returncode == 0 else "crashed"
        if proc.returncode != 0:
            entry["error"] = f"exit status {proc.returncode}"
    entry["seconds"] = round(time.monotonic() - started, 1)
    if entry["status"] == "ok":
        try:
            result = json.loads(Path(out_path).read_text("utf-8") or "null")
        except (OSError, ValueError) as exc:
            entry["status"], entry["error"] = "crashed", f"unreadable result: {exc}"
        else:
            if not isinstance(result, dict):
                entry["status"] = "crashed"
                entry["error"] = f"run() returned {type(result).__name__}, not a dict"
            entry["result"] = result
    if entry["status"] != "ok":
        entry["stderr"] = _tail(stderr)
        entry["stdout"] = _tail(stdout)
    Path(out_path).unlink(missing_ok=True)
    return entry


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _print_mapping(mapping: dict[str, Any], indent: str) -> None:
    width = max((len(str(k)) for k in mapping), default=0)
    for key, value in mapping.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_mapping(value, indent + "  ")
        else:
            print(f"{indent}{str(key).ljust(width)}  {_fmt(value)}")


def _goals(result: dict[str, Any]) -> dict[str, Any]:
    goals = result.get("goals")
    return goals if isinstance(goals, dict) else {}


def print_entry(entry: dict[str, Any]) -> None:
    result = entry.get("result")
    title = result.get("name", entry["bench"]) if isinstance(result, dict) else entry["bench"]
    print(f"\n== {title}  [{entry['status']}, {entry['seconds']} s]")
    if entry["status"] != "ok":
        print(f"   {entry.get('error', '')}")
        for stream in ("stderr", "stdout"):
            if entry.get(stream):
                print(f"   --- {stream} (tail) ---")
                print("   " + entry[stream].rstrip().replace("\n", "\n   "))
    if not isinstance(result, dict):
        if result is not None:
            print(f"   {result!r}")
        return
    figures = result.get("figures")
    if isinstance(figures, dict) and figures:
        print("  figures:")
        _print_mapping(figures, "    ")
    goals = _goals(result)
    if goals:
        print("  goals:")
        for goal, spec in goals.items():
            if isinstance(spec, dict):
                met = spec.get("met")
                mark = "MET " if met is True else "MISS" if met is False else " ?  "
                print(
                    f"    [{mark}] {goal}: measured {_fmt(spec.get('measured'))}"
                    f" (target {_fmt(spec.get('target'))})"
                )
            else:
                print(f"    [ ?  ] {goal}: {_fmt(spec)}")
    others = {k: v for k, v in result.items() if k not in ("name", "figures", "goals")}
    if others:
        print("  other:")
        _print_mapping(others, "    ")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO, capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_results(entries: list[dict[str, Any]]) -> None:
    """Merge this run's entries into results.json, atomically."""
    OUT_DIR.mkdir(exist_ok=True)
    try:
        previous = json.loads(RESULTS.read_text("utf-8"))
        benches = previous.get("benches", {}) if isinstance(previous, dict) else {}
    except (OSError, ValueError):
        benches = {}
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": _git_commit(),
    }
    for entry in entries:
        benches[entry["bench"]] = {**entry, "machine": machine}
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"benches": benches}, indent=1, default=repr) + "\n", "utf-8")
    tmp.replace(RESULTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="benches to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benches and exit")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per bench (default 300)"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODULE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child)

    found = discover()
    if args.list:
        print("\n".join(found))
        return 0
    wanted = [n.removeprefix("bench_").removesuffix(".py") for n in args.names] or list(found)
    unknown = [n for n in wanted if n not in found]
    if unknown:
        known = ", ".join(found)
        print(f"unknown bench(es): {', '.join(unknown)}; known: {known}", file=sys.stderr)
        return 2

    entries = []
    for name in wanted:
        print(f"running {name} …", flush=True)
        entry = run_one(name, found[name], args.timeout)
        print_entry(entry)
        entries.append(entry)
    write_results(entries)

    failed = [e["bench"] for e in entries if e["status"] != "ok"]
    missed = [
        f"{e['bench']}: {goal}"
        for e in entries
        if isinstance(e.get("result"), dict)
        for goal, spec in _goals(e["result"]).items()
        if isinstance(spec, dict) and spec.get("met") is False
    ]
    print(f"\n{len(entries)} bench(es) run; results in {RESULTS.relative_to(REPO)}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    if missed:
        print("goals not met:\n  " + "\n  ".join(missed))
    return 2 if failed else 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
