"""Helpers for the terminal's tests: a real runtime on the simulated plant (127.0.0.1)."""

from __future__ import annotations

import contextlib
import html
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest
from custos_testkit import CHEAP_SECURITY, PLANT_PASSWORD, demo_config, init_plant_data, until
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, Static

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.core.records import Origin
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir
from hmi.terminal import initial_links
from hmi.ui.app import CustosApp

CONSOLE = Origin("T-CONSOLE-1", "local:op@host")


@dataclass
class Plant:
    runtime: Runtime
    plc: BioreactorPLC

    def app(self) -> CustosApp:
        assert self.runtime.api is not None
        app = CustosApp(
            self.runtime.api,
            CONSOLE,
            plant_name="Test plant",
            tz=UTC,
            links=initial_links(self.runtime),
        )
        app.attach(self.runtime.events)
        return app

    def query(self, sql: str, params: list[object] | None = None) -> list[tuple]:
        assert self.runtime.services is not None
        return self.runtime.services.store.query(sql, params)

    def value(self, tag: str) -> object:
        assert self.runtime.plant is not None
        return self.runtime.plant.table.get(tag).value


@contextlib.asynccontextmanager
async def running_plant(tmp_path: Path, security: str = CHEAP_SECURITY) -> AsyncIterator[Plant]:
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0, tick=None) as mic,
    ):
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        (config / "security.toml").write_text(security)
        data = tmp_path / "data"
        await init_plant_data(data, config, CONSOLE)
        async with Runtime(data, config) as runtime:
            assert runtime.plant is not None
            table = runtime.plant.table
            for tag in ("BR101.TEMP_SP", "BR101.TEMP_PV", "MIC1.Focus"):
                await until(lambda t=tag: table.get(t).quality.value == "GOOD", what=tag)
            yield Plant(runtime, plc)
    report = verify_data_dir(data)
    assert report.ok, report.problems


@pytest.fixture(name="plant")
async def plant_fixture(tmp_path: Path) -> AsyncIterator[Plant]:
    """The plant and its runtime for one test (import it into the test module to use it).

    Not in a conftest.py: a second ``conftest`` module would shadow the one other test
    packages import helpers from.
    """
    async with running_plant(tmp_path) as p:
        yield p


async def wait_for(
    pilot: Pilot[None], predicate: Callable[[], object], what: str = "", timeout: float = 20.0
) -> None:
    """Let the app run until ``predicate()`` holds (workers run on the same loop)."""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause()
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


async def login(pilot: Pilot[None], user: str, password: str = PLANT_PASSWORD) -> None:
    app = pilot.app
    app.screen.query_one("#user", Input).value = user
    app.screen.query_one("#password", Input).value = password
    app.screen.query_one("#password", Input).focus()
    await pilot.press("enter")


def texts(app: App[None]) -> str:
    """The words on the terminal as rendered (SVG screenshot), borders and line breaks as spaces."""
    svg = app.export_screenshot()
    runs = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    text = html.unescape("".join(runs)).replace("\xa0", " ")
    text = re.sub(r"[\u2500-\u259f]", " ", text)  # box drawing: dialog borders
    return " ".join(text.split())


def dialog_text(app: App[None]) -> str:
    """The words of the topmost screen's Static widgets (a dialog without what is behind it)."""
    words = " ".join(str(w.render()) for w in app.screen.query(Static))
    return " ".join(words.split())


__all__ = [
    "PLANT_PASSWORD",
    "Plant",
    "dialog_text",
    "login",
    "plant_fixture",
    "running_plant",
    "texts",
    "until",
    "wait_for",
]
