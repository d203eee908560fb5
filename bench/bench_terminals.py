"""20 remote terminals on a plant of 1,000 tags: update latency and the runtime's CPU.

The issue's remote-terminal bench: ``hmi serve`` (the real headless runtime:
store, tag table with history, scanner, and the Terminal API on a Unix
socket) supervising one Modbus TCP device (``drivers.sim.bulk``) of 1,000
float32 process values, each drawn anew every second (noise σ = 1), polled
at a 1 s scan. Every value changes every scan, so each logged-in terminal
is pushed all 1,000 readings a second.

Three processes besides the bench itself, so that each one's CPU is its own:
the simulated device, the runtime (``hmi serve``, whose CPU is the figure
judged, read from ``/proc/<pid>/stat``) and the terminals (clients started
by this module as ``python -m bench.bench_terminals --clients N``, each a
real ``RemoteTerminalAPI`` that logs in and keeps its mirror of pushed
values, as the TUI would; several per process).

Latency is the time a terminal's process has applied a pushed reading to its
mirror (decoded, ready for its screens) minus the reading's ``time``
(stamped by the scanner when the sample was read; same host, same clock),
for every reading stamped within the window. It includes the push period
(``PUSH_EVERY_S``, 0.25 s): a reading waits for the next push. Beside it,
the latency to the moment the message was read off the link, before the
terminal decodes it: the difference is the terminals' own CPU, which here
share this host's cores with the runtime while a real terminal has its own
machine. A reading counts as arrived if it came within
``GRACE_S`` after the window; the share arrived is over the 1,000 × seconds
readings the scan stamps in the window (a reading superseded before its
push is coalesced away, by design, and counts as not arrived), and, beside
it, over the union of what any terminal received.

The machines are noisy, so the same run measures three phases, each with the
same plant: no terminal (the plant's own CPU), one terminal (the baseline
for latency), 20 terminals. Goals: p99 latency under 0.5 s and the runtime
under one core with 20 terminals. Reported besides: ratios against the
baselines, the terminals' and the device's processes' CPU (they share the
machine's two cores with the runtime), pushed value updates skipped for slow
terminals (none expected), and the load average.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

GOAL_P99_S = 0.5
GOAL_CORE_SHARE = 1.0
TAGS = 1000
SCAN_S = 1.0
NOISE = 1.0
DEADBAND = 1.0
TERMINALS = 20
CLIENT_PROCESSES = 4
WINDOW_S = 20.0
IDLE_WINDOW_S = 12.0
SETTLE_S = 3.0
GRACE_S = 2.0
STEP_TIMEOUT_S = 60.0

ADMIN_ID, ADMIN_NAME, ADMIN_TEMP, ADMIN_PASSWORD = (
    "admin1",
    "Ada Admin",
    "TempBoss123",
    "Adm1nSecret",
)
USER_ID, USER_PASSWORD = "op1", "Working9pass"
CHEAP_SECURITY = """
lockout_attempts = 3
[argon2]
time_cost = 1
memory_kib = 8
parallelism = 1
[password]
history = 3
"""
REPO = Path(__file__).resolve().parents[1]

_T0 = time.perf_counter()


def _say(what: str) -> None:
    """Progress on stderr (shown by ``python -m bench`` when a bench fails)."""
    print(
        f"[bench terminals {time.perf_counter() - _T0:6.1f} s] {what}", file=sys.stderr, flush=True
    )


def _process_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the terminals' side: ``python -m bench.bench_terminals --clients N`` -------------------


async def _terminals(target: str, first: int, count: int) -> dict[str, Any]:
    """Log ``count`` terminals in, say ``ready``, then record one window given on stdin.

    Stdin gives ``START END`` (epoch seconds); the answer, one JSON line on stdout,
    holds per terminal the latencies (ms) of every reading stamped in [START, END):
    to the terminal's mirror (what its screens read) and, for comparison, to the
    moment the message was read off the link (before decoding), and the stamps
    received per tag.
    """
    from hmi.remote.client import RpcClient
    from hmi.remote.terminal_api import RemoteTerminalAPI

    window: list[float] = [float("inf"), float("-inf")]
    apis = []
    latencies: list[tuple[list[float], list[float]]] = []
    stamps: list[dict[str, set[float]]] = []

    def recorder(
        api: RemoteTerminalAPI, arrived: list[float], lat: tuple[list[float], list[float]],
        seen: dict[str, set[float]],
    ) -> Any:  # fmt: skip
        tags = api.mirror.tags
        to_mirror, to_link = lat

        def on_event(method: str, params: dict[str, Any]) -> None:
            if method != "tags":
                return
            now = time.time()  # the mirror has applied them: its listener comes before this
            start, end = window
            for raw in params.get("readings", []):
                reading = tags[raw["tag"]]
                stamp = reading.time.timestamp()
                if start <= stamp < end:
                    to_mirror.append(now - stamp)
                    to_link.append(arrived[0] - stamp)
                    seen.setdefault(reading.tag, set()).add(stamp)

        return on_event

    for i in range(first, first + count):
        client = await RpcClient.unix(Path(target.removeprefix("unix:")))
        arrived = [0.0]

        def read_off_link(
            method: str, params: dict[str, Any], arrived: list[float] = arrived
        ) -> None:
            arrived[0] = time.time()

        client.listen(read_off_link)  # before the mirror's own listener
        api = RemoteTerminalAPI(client, await client.hello(f"T-BENCH-{i:02d}"))
        await api.login(USER_ID, USER_PASSWORD, api.origin)
        lat: tuple[list[float], list[float]] = ([], [])
        seen: dict[str, set[float]] = {}
        client.listen(recorder(api, arrived, lat, seen))
        apis.append(api)
        latencies.append(lat)
        stamps.append(seen)
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start, end = (float(x) for x in line.split())
    window[:] = [start, end]
    await asyncio.sleep(max(0.0, end + GRACE_S - time.time()))
    window[:] = [float("inf"), float("-inf")]
    result = {
        "terminals": [
            {
                "latency_ms": [round(v * 1000, 1) for v in lat[0]],
                "latency_to_link_ms": [round(v * 1000, 1) for v in lat[1]],
                "stamps": {tag: sorted(s) for tag, s in seen.items()},
                "linked": not api.client.closed.is_set(),
            }
            for lat, seen, api in zip(latencies, stamps, apis, strict=True)
        ]
    }
    for api in apis:
        await api.client.close()
    return result


def _terminals_main(argv: list[str]) -> int:
    target, first, count = argv[0], int(argv[1]), int(argv[2])
    result = asyncio.run(_terminals(target, first, count))
    print(json.dumps(result), flush=True)
    return 0


# -- the plant: a device, a configuration, a data directory, ``hmi serve`` ----------------


@contextlib.contextmanager
def _child(
    argv: list[str], ready: str, *, stream: str = "stdout", env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Start ``argv``; yield it once a line of ``stream`` contains ``ready``; end it after."""
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stream == "stderr" else None,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        out = child.stderr if stream == "stderr" else child.stdout
        assert out is not None
        got: list[str] = []
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            line = out.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[:4]} did not start: {got[-10:]}")
            got.append(line.rstrip())
            if ready in line:
                break
        child.lines = got  # type: ignore[attr-defined]
        if stream == "stderr":  # keep draining, so a chatty child cannot block on a full pipe
            threading.Thread(target=out.read, daemon=True).start()
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            assert child.stdin is not None
            with contextlib.suppress(OSError):
                child.stdin.close()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _write_config(target: Path, port: int) -> None:
    target.mkdir(parents=True)
    (target / "security.toml").write_text(CHEAP_SECURITY)
    (target / "plant.toml").write_text(
        f'[plant]\nname = "Bench plant of {TAGS:,} tags"\n\n[scan_classes]\nnormal = {SCAN_S}\n'
    )
    (target / "devices.toml").write_text(
        f'[[device]]\nname = "U01"\nkind = "modbus"\nhost = "127.0.0.1"\nport = {port}\n'
        "unit = 1\ntimeout_s = 1.0\nmax_gap = 10\nreconnect_max_s = 10.0\n"
    )
    (target / "tags.toml").write_text(
        "\n".join(
            f'[[tag]]\nname = "U01.PV{i:04d}"\ndevice = "U01"\naddress = "ir:{2 * i}"\n'
            f'type = "float32"\nunits = "u"\ndeadband = {DEADBAND}\narea = "bench"\n'
            'equipment = "U01"\n'
            for i in range(TAGS)
        )
    )


async def _init_data(data: Path, config: Path) -> None:
    """The data directory, its first admin and one operator, both with their own password."""
    from hmi.bootstrap import init_data_dir
    from hmi.core.records import Origin
    from hmi.core.useradmin import Credentials

    origin = Origin("BENCH-1", "local:bench")
    services = await init_data_dir(data, config, ADMIN_ID, ADMIN_NAME, ADMIN_TEMP, origin)
    try:
        identity = services.identity
        first = await identity.login(ADMIN_ID, ADMIN_TEMP, origin)
        await identity.change_password(first, ADMIN_TEMP, ADMIN_PASSWORD)
        await identity.logout(first)
        admin = await identity.login(ADMIN_ID, ADMIN_PASSWORD, origin)
        temp = await services.admin.add_user(
            admin, Credentials(ADMIN_PASSWORD, ADMIN_ID), USER_ID, "Olga Operator",
            ("operator",), "bench user",
        )  # fmt: skip
        await identity.logout(admin)
        session = await identity.login(USER_ID, temp, origin)
        await identity.change_password(session, temp, USER_PASSWORD)
        await identity.logout(session)
    finally:
        services.close()


# -- the phases ---------------------------------------------------------------------------


def _window(runtime_pid: int, others: dict[str, int], start: float, end: float) -> dict[str, Any]:
    """CPU shares of the runtime and ``others`` from ``start`` to ``end`` (epoch seconds)."""
    pids = {"runtime": runtime_pid, **others}
    time.sleep(max(0.0, start - time.time()))  # the window's edges, not a synchronisation
    cpu0 = {k: _process_cpu(p) for k, p in pids.items()}
    wall0 = time.perf_counter()
    time.sleep(max(0.0, end - time.time()))
    wall = time.perf_counter() - wall0
    cpu = {k: round((_process_cpu(p) - cpu0[k]) / wall, 4) for k, p in pids.items()}
    return {"start": start, "end": end, "wall": wall, "cpu": cpu}


def _phase(target: str, terminals: int, runtime_pid: int, device_pid: int) -> dict[str, Any]:
    """``terminals`` logged in over as many client processes as useful; one window."""
    per = max(1, -(-terminals // CLIENT_PROCESSES))
    groups = [(f, min(per, terminals - f)) for f in range(0, terminals, per)]
    _say(f"{terminals} terminal(s): connecting in {len(groups)} process(es)")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.bench_terminals", "--clients", target, str(f), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for f, n in groups
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"terminal process did not log in: {line!r}")
        time.sleep(SETTLE_S)  # let the logins' first full pushes pass before the window
        _say(f"{terminals} terminal(s): window")
        start = time.time() + 0.5  # time for the terminals to hear of it first
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{start} {start + WINDOW_S}\n")
            p.stdin.flush()
        others = {"device": device_pid, **{f"terminals_{i}": p.pid for i, p in enumerate(procs)}}
        win = _window(runtime_pid, others, start, start + WINDOW_S)
        outputs = []
        for p in procs:
            out, _ = p.communicate(timeout=STEP_TIMEOUT_S)
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return _summarise(terminals, win, [t for o in outputs for t in o["terminals"]])


def _summarise(
    terminals: int, win: dict[str, Any], results: list[dict[str, Any]]
) -> dict[str, Any]:
    union: dict[str, set[float]] = {}
    for r in results:
        for tag, stamps in r["stamps"].items():
            union.setdefault(tag, set()).update(stamps)
    stamped = sum(len(s) for s in union.values())
    received = sum(len(s) for r in results for s in r["stamps"].values())
    latencies = sorted(v / 1000 for r in results for v in r["latency_ms"])
    to_link = sorted(v / 1000 for r in results for v in r["latency_to_link_ms"])
    expected = round(TAGS * win["wall"] / SCAN_S)
    cpu = win["cpu"]
    clients = sum(v for k, v in cpu.items() if k.startswith("terminals_"))
    return {
        "terminals": terminals,
        "window_s": round(win["wall"], 1),
        "runtime_core_share": cpu["runtime"],
        "terminal_processes_core_share": round(clients, 4),
        "device_process_core_share": cpu["device"],
        "readings_stamped_in_window": stamped,
        "readings_expected_from_scan": expected,
        "readings_received_all_terminals": received,
        "share_arrived": round(min(1.0, received / (expected * terminals)), 5),
        "share_arrived_of_those_any_terminal_got": (
            round(received / (stamped * terminals), 5) if stamped else 0.0
        ),
        "links_kept": sum(1 for r in results if r["linked"]),
        "latency_s_p50": round(statistics.median(latencies), 4) if latencies else None,
        "latency_s_p99": round(_percentile(latencies, 0.99), 4) if latencies else None,
        "latency_s_max": round(latencies[-1], 4) if latencies else None,
        "latency_to_link_s_p50": round(statistics.median(to_link), 4) if to_link else None,
        "latency_to_link_s_p99": round(_percentile(to_link, 0.99), 4) if to_link else None,
        "updates_per_s_pushed": round(len(latencies) / win["wall"]),
    }


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-terminals-"))
    load_before = os.getloadavg()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    device_argv = [
        sys.executable, "-m", "drivers.sim.bulk", "--devices", "1", "--floats", str(TAGS),
        "--noise", str(NOISE), "--period", str(SCAN_S),
    ]  # fmt: skip
    try:
        with _child(device_argv, "modbus tcp://") as device:
            port = int(device.lines[-1].split(":")[2].split()[0])  # type: ignore[attr-defined]
            _write_config(tmp / "config", port)
            _say("init data directory")
            asyncio.run(_init_data(tmp / "data", tmp / "config"))
            target = f"unix:{tmp / 'custos.sock'}"
            serve_argv = [
                sys.executable, "-c", "from hmi.cli import main; main()", "serve",
                "--data", str(tmp / "data"), "--config", str(tmp / "config"), "--listen", target,
            ]  # fmt: skip
            _say("hmi serve")
            with _child(serve_argv, "Serving terminals", stream="stderr", env=env) as serve:
                time.sleep(SETTLE_S)  # the first scans and history batches pass
                _say("no terminal: window")
                now = time.time()
                idle = _window(serve.pid, {"device": device.pid}, now, now + IDLE_WINDOW_S)
                one = _phase(target, 1, serve.pid, device.pid)
                many = _phase(target, TERMINALS, serve.pid, device.pid)
                _say("stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    idle_share = idle["cpu"]["runtime"]
    p99, p99_one = many["latency_s_p99"], one["latency_s_p99"]
    share = many["runtime_core_share"]
    figures = {
        "load_average_1_5_15min_before": [round(x, 2) for x in load_before],
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "plant": f"{TAGS} float32 tags on one Modbus device, all changing every {SCAN_S} s scan",
        f"latency_s_p50_{TERMINALS}_terminals": many["latency_s_p50"],
        f"latency_s_p99_{TERMINALS}_terminals": p99,
        f"latency_to_link_s_p99_{TERMINALS}_terminals (before the terminal decodes)": many[
            "latency_to_link_s_p99"
        ],
        "latency_s_p50_1_terminal": one["latency_s_p50"],
        "latency_s_p99_1_terminal": p99_one,
        f"p99_{TERMINALS}_over_1_terminal": round(p99 / p99_one, 2) if p99 and p99_one else None,
        "runtime_core_share_no_terminal": idle_share,
        "runtime_core_share_1_terminal": one["runtime_core_share"],
        f"runtime_core_share_{TERMINALS}_terminals": share,
        f"runtime_cpu_{TERMINALS}_terminals_over_no_terminal": (
            round(share / idle_share, 2) if idle_share else None
        ),
        "runtime_cpu_per_terminal_core_share": round((share - idle_share) / TERMINALS, 4),
        f"share_arrived_{TERMINALS}_terminals": many["share_arrived"],
        "no_terminal": {"window_s": round(idle["wall"], 1), "core_share": idle["cpu"]},
        "one_terminal": one,
        f"{TERMINALS}_terminals": many,
    }
    goals = {
        f"update latency p99, scanner to terminal, {TERMINALS} terminals × {TAGS} tags (s)": {
            "target": f"< {GOAL_P99_S}",
            "measured": p99,
            "met": p99 is not None and p99 < GOAL_P99_S,
        },
        f"runtime process CPU with {TERMINALS} terminals (share of one core)": {
            "target": f"< {GOAL_CORE_SHARE}",
            "measured": share,
            "met": share < GOAL_CORE_SHARE,
        },
        "every update arrived, every link kept": {
            "target": f"share arrived 1.0, {TERMINALS} links",
            "measured": {"share_arrived": many["share_arrived"], "links": many["links_kept"]},
            "met": many["share_arrived"] >= 0.999 and many["links_kept"] == TERMINALS,
        },
    }
    return {"name": "terminals", "figures": figures, "goals": goals}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--clients"]:
        sys.exit(_terminals_main(sys.argv[2:]))
    print(json.dumps(run(), indent=1))
