"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from custos_plant import ApiPlant, running_plant

from hmi.remote import protocol as rpc
from hmi.remote.server import TerminalServer


@pytest.fixture
async def api_plant(tmp_path: Path) -> AsyncIterator[ApiPlant]:
    """Simulators, demo configuration, users of ``custos_testkit.PLANT_USERS``, a runtime."""
    async with running_plant(tmp_path) as plant:
        yield plant


@pytest.fixture
async def served(api_plant: ApiPlant, tmp_path: Path) -> AsyncIterator[tuple[TerminalServer, Path]]:
    """``api_plant``'s runtime serving terminals on a Unix socket in ``tmp_path``."""
    assert api_plant.runtime.services is not None
    server = TerminalServer(api_plant.api, api_plant.runtime.services.config.terminals)
    path = tmp_path / "custos.sock"
    listener = await asyncio.start_unix_server(server.serve_unix, path, limit=rpc.MAX_MESSAGE)
    try:
        yield server, path
    finally:
        listener.close()
        await listener.wait_closed()
