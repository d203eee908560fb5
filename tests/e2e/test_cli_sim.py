"""`hmi sim` serves the simulated plant on real ports; `hmi browse` lists the microscope's nodes."""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from hmi.cli import main

pytestmark = pytest.mark.timeout(60)

HMI = [sys.executable, "-c", "from hmi.cli import main; main()"]
MODBUS_LINE = re.compile(r"^modbus tcp://127\.0\.0\.1:(\d+) unit 1$")
OPCUA_LINE = re.compile(r"^opcua (opc\.tcp://127\.0\.0\.1:(\d+)\S*)$")


@dataclass
class Sim:
    process: subprocess.Popen[str]
    lines: list[str]
    modbus_port: int
    opcua_url: str
    opcua_port: int


def _read_lines(process: subprocess.Popen[str], timeout: float, count: int) -> list[str]:
    """The first ``count`` lines of stdout, or fail with what stderr said."""
    got: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            got.put(line.rstrip("\n"))
        got.put(None)

    threading.Thread(target=pump, daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        try:
            line = got.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            process.kill()
            _, err = process.communicate(timeout=10)
            raise AssertionError(f"hmi sim printed {lines!r}; stderr:\n{err}")
        lines.append(line)
    return lines


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    process = subprocess.Popen(
        [*HMI, "sim", "--modbus-port", "0", "--opcua-port", "0", "--seconds", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _read_lines(process, timeout=30, count=2)
        modbus = MODBUS_LINE.match(lines[0])
        opcua = OPCUA_LINE.match(lines[1])
        assert modbus and opcua, lines
        yield Sim(process, lines, int(modbus.group(1)), opcua.group(1), int(opcua.group(2)))
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=20)


def test_sim_prints_one_line_per_server_with_ports_that_accept_connections(sim: Sim) -> None:
    assert len(sim.lines) == 2
    assert sim.modbus_port > 0 and sim.opcua_port > 0
    for port in (sim.modbus_port, sim.opcua_port):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_browse_lists_the_microscope_nodes(sim: Sim) -> None:
    result = CliRunner().invoke(main, ["browse", sim.opcua_url, "--depth", "3"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[1:]}
    assert rows["ns=2;s=MIC1.Focus"] == ["MIC1/Focus", "Variable", "Double", "rw"]
    assert rows["ns=2;s=MIC1.FocusActual"] == ["MIC1/FocusActual", "Variable", "Double", "r"]
    assert rows["ns=2;s=MIC1.Camera.Capture"] == ["MIC1/Camera/Capture", "Method"]
    assert result.output.splitlines()[0].split() == ["NODE", "ID", "PATH", "CLASS", "TYPE", "RW"]


def test_sim_stops_cleanly_on_sigterm(sim: Sim) -> None:
    sim.process.terminate()
    assert sim.process.wait(timeout=20) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sim.modbus_port), timeout=2).close()


def test_sim_stops_by_itself_after_the_given_seconds() -> None:
    done = subprocess.run(
        [*HMI, "sim", "--modbus-port", "0", "--opcua-port", "0", "--seconds", "0.5"],
        capture_output=True,
        text=True,
        timeout=40,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and MODBUS_LINE.match(lines[0]) and OPCUA_LINE.match(lines[1])


def test_browse_of_an_unreachable_server_fails_in_plain_words() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(main, ["browse", f"opc.tcp://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert f"cannot browse opc.tcp://127.0.0.1:{port}:" in result.output


def test_sim_refuses_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*HMI, "sim", "--modbus-port", str(port), "--opcua-port", "0", "--seconds", "1"],
            capture_output=True,
            text=True,
            timeout=40,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port} (Modbus)" in done.stderr
    assert done.stdout == ""
