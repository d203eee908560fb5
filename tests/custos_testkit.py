"""Constants and helpers shared by the tests (importable from any test package)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hmi.bootstrap import Services
from hmi.core.records import Origin

ADMIN_ID = "admin1"
ADMIN_NAME = "Ada Admin"
ADMIN_TEMP = "TempBoss123"
ADMIN_PASSWORD = "Adm1nSecret"
ORIGIN = Origin("T-TEST-1", "local:test")
REPO = Path(__file__).resolve().parents[1]

CHEAP_SECURITY = """
lockout_attempts = 3
[argon2]
time_cost = 1
memory_kib = 8
parallelism = 1
[password]
history = 3
"""


def write_config(directory: Path, security: str = CHEAP_SECURITY, plant: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "security.toml").write_text(security)
    (directory / "plant.toml").write_text(plant or '[plant]\nname = "Test plant"\n')
    return directory


async def activate(services: Services, user_id: str, temporary: str, password: str) -> None:
    """First login with a temporary password, changed to ``password``."""
    session = await services.identity.login(user_id, temporary, ORIGIN)
    await services.identity.change_password(session, temporary, password)
    await services.identity.logout(session)


DEMO_CONFIG = Path(__file__).parents[1] / "config" / "demo"


async def until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Wait for ``predicate`` against a deadline (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def demo_config(target: Path, modbus_port: int, opcua_url: str) -> Path:
    """The demo plant's configuration, pointed at simulators on free ports, cheap hashing."""
    shutil.copytree(DEMO_CONFIG, target)
    devices = (target / "devices.toml").read_text()
    devices = devices.replace("port = 15020", f"port = {modbus_port}")
    devices = devices.replace('"opc.tcp://127.0.0.1:14840"', f'"{opcua_url}"')
    (target / "devices.toml").write_text(devices)
    (target / "security.toml").write_text(CHEAP_SECURITY)
    return target


PLANT_PASSWORD = "Working9pass"
PLANT_USERS = (
    ("op1", "Olga Operator", "operator"),
    ("op2", "Otto Operator", "operator"),
    ("sup1", "Sam Supervisor", "supervisor"),
    ("sup2", "Sue Supervisor", "supervisor"),
    ("qa1", "Quinn Quality", "qa"),
)


async def init_plant_data(data: Path, config: Path, origin: Origin) -> None:
    """A new data directory with the first admin and ``PLANT_USERS``, all on ``PLANT_PASSWORD``."""
    from hmi.bootstrap import init_data_dir
    from hmi.core.useradmin import Credentials

    services = await init_data_dir(data, config, ADMIN_ID, ADMIN_NAME, ADMIN_TEMP, origin)
    try:
        await activate(services, ADMIN_ID, ADMIN_TEMP, ADMIN_PASSWORD)
        admin = await services.identity.login(ADMIN_ID, ADMIN_PASSWORD, origin)
        for user_id, name, role in PLANT_USERS:
            temp = await services.admin.add_user(
                admin, Credentials(ADMIN_PASSWORD, ADMIN_ID), user_id, name, (role,), "test user"
            )
            await activate(services, user_id, temp, PLANT_PASSWORD)
        await services.identity.logout(admin)
    finally:
        services.close()


class HmiProcess:
    """An ``hmi`` command as its own process, its stderr read as it comes (so the log can
    never fill the pipe and stall it)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hmi.cli", *args],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        stderr = self.proc.stderr
        assert stderr is not None
        self.reader = threading.Thread(target=lambda: self.lines.extend(stderr), daemon=True)
        self.reader.start()

    def line(self, prefix: str) -> str | None:
        """The first line of stderr starting with ``prefix`` (libraries may log before it)."""
        return next((ln for ln in list(self.lines) if ln.startswith(prefix)), None)

    async def started(self, prefix: str, timeout: float = 60) -> str:
        """Wait for the line that says it runs; fail with its whole stderr if it ended first."""
        await until(lambda: self.line(prefix) or self.proc.poll() is not None, timeout, prefix)
        found = self.line(prefix)
        assert found is not None, self.log
        return found

    async def stop(self, timeout: float = 60) -> int:
        """SIGTERM, wait (kill past ``timeout``), and the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
        except TimeoutError:
            self.proc.kill()
            self.proc.wait(10)
            raise
        finally:
            await asyncio.to_thread(self.reader.join, 10)
        return self.proc.returncode

    @property
    def log(self) -> str:
        return "".join(self.lines)
