"""Notifications pop up at the terminal in the runtime's process too (lockouts reach admins)."""

from __future__ import annotations

import pytest
from custos_testkit import ADMIN_ID, ADMIN_PASSWORD
from ui_kit import (
    CONSOLE,
    Plant,
    login,
    plant_fixture,  # noqa: F401  (the plant fixture)
    wait_for,
)

from hmi.core.errors import AuthenticationError

pytestmark = pytest.mark.timeout(120)


def popped(app: object) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]  # type: ignore[attr-defined]


async def test_a_lockout_pops_up_at_the_administrators_terminal(plant: Plant) -> None:
    api = plant.runtime.api
    assert api is not None
    app = plant.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await login(pilot, ADMIN_ID, ADMIN_PASSWORD)
        await wait_for(pilot, lambda: app._last_notice is not None, "notifications taken in")
        assert popped(app) == []
        for _ in range(3):
            with pytest.raises(AuthenticationError):
                await api.login("op2", "not the password 1", CONSOLE)
        await wait_for(
            pilot,
            lambda: any("lockout" in n and "op2" in n for n in popped(app)),
            "the lockout notification",
            timeout=10,
        )
        assert len([n for n in popped(app) if "op2" in n]) == 1
