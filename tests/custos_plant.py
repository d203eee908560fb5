"""The simulated plant behind a running runtime, for tests that go through the Terminal API
(``api_plant`` fixture in tests/e2e/conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from custos_testkit import PLANT_PASSWORD, demo_config, init_plant_data, until

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.core.api import Credentials, SetpointRequest, TerminalAPI
from hmi.core.identity import Session
from hmi.core.records import Origin
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir

CONSOLE = Origin("T-CONSOLE-1", "local:op@host")
QA_DESK = Origin("T-QA-1", "local:qa@host")
IMAGING = Origin("T-IMAGING-1", "local:op@host")


def signed(user_id: str) -> Credentials:
    return Credentials(PLANT_PASSWORD, user_id)


@dataclass
class ApiPlant:
    runtime: Runtime
    plc: BioreactorPLC
    mic: MicroscopeServer

    @property
    def api(self) -> TerminalAPI:
        assert self.runtime.api is not None
        return self.runtime.api

    def value(self, tag: str) -> object:
        assert self.runtime.plant is not None
        return self.runtime.plant.table.get(tag).value

    def query(self, sql: str, params: list[object] | None = None) -> list[tuple]:
        assert self.runtime.services is not None
        return self.runtime.services.store.query(sql, params)

    async def login(self, user_id: str, origin: Origin = CONSOLE) -> Session:
        return await self.api.login(user_id, PLANT_PASSWORD, origin)

    async def write(
        self, session: Session, tag: str, value: object, run_id: str, kind: str = "write_setpoint"
    ) -> None:
        request = SetpointRequest(
            tag, value, f"procedure: {tag}", signed(session.user_id), kind=kind, run_id=run_id
        )
        outcome = await self.api.request_write(session, CONSOLE, request)
        assert outcome.outcome == "done", outcome


@contextlib.asynccontextmanager
async def running_plant(tmp_path: Path) -> AsyncIterator[ApiPlant]:
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0, tick=None) as mic,
    ):
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        data = tmp_path / "data"
        await init_plant_data(data, config, CONSOLE)
        async with Runtime(data, config) as runtime:
            assert runtime.plant is not None
            table = runtime.plant.table
            for tag in ("BR101.TEMP_SP", "BR101.AGITATOR_RUN", "MIC1.Focus", "MIC1.StageReady"):
                await until(lambda t=tag: table.get(t).quality.value == "GOOD", what=tag)
            yield ApiPlant(runtime, plc, mic)
    report = verify_data_dir(data)
    assert report.ok, report.problems
