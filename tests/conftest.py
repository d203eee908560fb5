"""Fixtures shared by every test package: a real data directory with cheap password hashing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hmi.bootstrap import Services, init_data_dir
from hmi.core.clock import FakeClock
from hmi.core.identity import Session
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


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def services(tmp_path: Path, config_dir: Path, clock: FakeClock) -> AsyncIterator[Services]:
    svc = await init_data_dir(
        tmp_path / "data", config_dir, ADMIN_ID, ADMIN_NAME, ADMIN_TEMP, ORIGIN, clock=clock
    )
    try:
        yield svc
    finally:
        svc.close()


async def activate(services: Services, user_id: str, temporary: str, password: str) -> None:
    """First login with a temporary password, changed to ``password``."""
    session = await services.identity.login(user_id, temporary, ORIGIN)
    await services.identity.change_password(session, temporary, password)
    await services.identity.logout(session)


@pytest.fixture
async def admin_session(services: Services) -> Session:
    await activate(services, ADMIN_ID, ADMIN_TEMP, ADMIN_PASSWORD)
    return await services.identity.login(ADMIN_ID, ADMIN_PASSWORD, ORIGIN)


UserMaker = Callable[..., object]


@pytest.fixture
def make_user(services: Services, admin_session: Session) -> UserMaker:
    """Create and activate an account; returns its working password."""
    from hmi.core.useradmin import Credentials

    async def make(user_id: str, name: str, *roles: str, password: str | None = None) -> str:
        temp = await services.admin.add_user(
            admin_session, Credentials(ADMIN_PASSWORD, ADMIN_ID), user_id, name, roles, "testing"
        )
        final = password or "Working9pass"
        await activate(services, user_id, temp, final)
        return final

    return make
