"""How the Trends page looks at 80x24, on fixed history from a stand-in records desk.

The clock is frozen and the values are a fixed curve, so a changed picture
means a changed screen. Update with
``pytest tests/ui/test_snapshots_trends.py --snapshot-update`` after checking the report.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from fake_api import T0, FakeAPI, operator_session
from test_snapshots import make_app, still
from textual.pilot import Pilot

from hmi.core.api_records import TrendSeries
from hmi.core.identity import Session
from hmi.ui.screens.trends import TrendsScreen

LIMITS = {"BR101.TEMP_PV": ("°C", 0.0, 60.0), "BR101.TEMP_SP": ("°C", 4.0, 45.0)}


class FakeRecords:
    """Tag history as a fixed curve: the vessel warming towards 37 °C after a setpoint step."""

    async def trend(
        self, session: Session, tag: str, start: datetime, end: datetime, max_points: int = 500
    ) -> TrendSeries:
        units, low, high = LIMITS.get(tag, ("", None, None))
        points = []
        for i in range(60):
            ts = start + (end - start) * i / 59
            minutes = (ts - (T0 - timedelta(minutes=10))).total_seconds() / 60
            if tag.endswith("_SP"):
                value = 30.0 if minutes < 2 else 37.0
            else:
                value = 29.5 + (7.5 * (1 - math.exp(-(minutes - 2) / 2.5)) if minutes > 2 else 0.0)
            points.append((ts, value))
        return TrendSeries(tag, units, low, high, tuple(points), False)


def test_trends(snap_compare):
    app = make_app()
    api = app.api
    assert isinstance(api, FakeAPI)
    api.records = FakeRecords()  # type: ignore[attr-defined]

    async def trending(pilot: Pilot[None]) -> None:
        pilot.app.start_session(operator_session())  # type: ignore[attr-defined]
        await pilot.pause()
        await pilot.press("f6")
        await pilot.pause()
        assert isinstance(pilot.app.screen, TrendsScreen)
        screen = pilot.app.screen
        for _ in range(50):
            await pilot.pause(0.02)
            if screen.lines:
                break
        await still(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=trending)
