"""Constants and helpers shared by the tests (importable from any test package)."""

from __future__ import annotations

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
