"""Constants and helpers shared by the tests (importable from any test package)."""

from __future__ import annotations

import asyncio
import shutil
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
