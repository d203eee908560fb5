"""The terminal against a real runtime on the simulated plant (127.0.0.1, free ports)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ui_kit import Plant, running_plant


@pytest.fixture
async def plant(tmp_path: Path) -> AsyncIterator[Plant]:
    async with running_plant(tmp_path) as p:
        yield p
