"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from custos_plant import ApiPlant, running_plant


@pytest.fixture
async def api_plant(tmp_path: Path) -> AsyncIterator[ApiPlant]:
    """Simulators, demo configuration, users of ``custos_testkit.PLANT_USERS``, a runtime."""
    async with running_plant(tmp_path) as plant:
        yield plant
