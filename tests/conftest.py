"""Fixtures shared by every test package: a real data directory with cheap password hashing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from custos_testkit import (
    ADMIN_ID,
    ADMIN_NAME,
    ADMIN_PASSWORD,
    ADMIN_TEMP,
    ORIGIN,
    activate,
    write_config,
)

from hmi.bootstrap import Services, init_data_dir
from hmi.core.clock import FakeClock
from hmi.core.identity import Session


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
