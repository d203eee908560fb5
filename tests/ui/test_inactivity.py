"""Inactivity: a countdown before the automatic logout, then back to login (SUP-10, 11.300)."""

from __future__ import annotations

from pathlib import Path

import pytest
from custos_testkit import CHEAP_SECURITY
from ui_kit import login, running_plant, texts, until, wait_for

from hmi.ui.app import TIMED_OUT
from hmi.ui.screens.login import LoginScreen
from hmi.ui.screens.overview import OverviewScreen

pytestmark = pytest.mark.timeout(120)

SHORT_SESSIONS = (
    CHEAP_SECURITY
    + """
[session]
inactivity_timeout_s = 10
warning_before_s = 5
"""
)


async def test_idle_session_counts_down_then_returns_to_login(tmp_path: Path):
    async with running_plant(tmp_path, SHORT_SESSIONS) as plant:
        app = plant.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "op1")
            await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "overview")
            await wait_for(pilot, lambda: "AUTO-LOGOUT IN 0:" in texts(app), "countdown")
            await wait_for(
                pilot, lambda: isinstance(app.screen, LoginScreen), "login after timeout"
            )
            assert app.session is None
            assert TIMED_OUT in texts(app)
            assert "Olga Operator" not in texts(app)
            assert len(app.screen_stack) == 2

        def events() -> list[str]:
            rows = plant.query("SELECT event FROM security_events WHERE user_id = 'op1'")
            return [e for (e,) in rows]

        await until(lambda: "inactivity_timeout" in events(), what="the timeout recorded")
