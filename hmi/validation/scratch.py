"""The scratch instance the OQ checks run against: a new data directory, the reference
configuration pointed at simulators on free ports of 127.0.0.1, OQ users, a runtime.

Everything lives under one temporary directory the caller owns; nothing here
opens or names any other data directory. Passwords are random for each run
and held only in memory: they are never written to the reports.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.bootstrap import Services, init_data_dir
from hmi.core.api import Credentials, TerminalAPI
from hmi.core.errors import ConfigError
from hmi.core.identity import Session
from hmi.core.records import Origin
from hmi.core.useradmin import Credentials as AdminCredentials
from hmi.runtime import Runtime

CONSOLE = Origin("T-CONSOLE-1", "local:oq@validation")
QA_DESK = Origin("T-QA-1", "local:oq@validation")
ADMIN = ("oq-admin", "OQ Administrator", "admin")
USERS = (
    ("oq-op1", "OQ Operator One", "operator"),
    ("oq-op2", "OQ Operator Two", "operator"),
    ("oq-sup1", "OQ Supervisor One", "supervisor"),
    ("oq-qa1", "OQ Quality One", "qa"),
)
_BACKUP_SECTION = re.compile(r"(?ms)^\[backup\][ \t]*$.*?(?=^\[|\Z)")
WAIT_TAGS = ("BR101.PH_SP", "BR101.HEATER_FAULT", "MIC1.Focus")


def new_password() -> str:
    """A random password that meets any composition rule of letters and digits."""
    return f"Oq{secrets.token_hex(8)}x7"


def reference_config(source: Path, target: Path, modbus_port: int, opcua_url: str) -> Path:
    """A copy of ``source`` (the reference plant) whose devices are the local simulators.

    Scheduled backups are switched off (the scratch instance lives for minutes) and
    any backup taken goes to the scratch folder, whatever the reference names.
    """
    if not (source / "devices.toml").is_file():
        raise ConfigError(f"{source}: the reference configuration (devices.toml) is missing.")
    shutil.copytree(source, target)
    devices = (target / "devices.toml").read_text()
    devices = devices.replace("port = 15020", f"port = {modbus_port}")
    devices = devices.replace('"opc.tcp://127.0.0.1:14840"', f'"{opcua_url}"')
    (target / "devices.toml").write_text(devices)
    plant = (target / "plant.toml").read_text()
    plant = _BACKUP_SECTION.sub("", plant)
    backups = json.dumps(str(target.parent / "backups"))
    (target / "plant.toml").write_text(f"{plant}\n[backup]\nenabled = false\nto = {backups}\n")
    return target


@dataclass
class ScratchPlant:
    """What a check may use: the runtime, the simulators and the scratch folders."""

    root: Path
    data: Path
    config: Path
    runtime: Runtime
    plc: BioreactorPLC
    mic: MicroscopeServer
    passwords: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    async def stop_runtime(self) -> None:
        """Stop the runtime once (at the end of the OQ)."""
        if not self.stopped:
            self.stopped = True
            await self.runtime.stop()

    @property
    def services(self) -> Services:
        if self.runtime.services is None:
            raise RuntimeError("the scratch runtime has no services")
        return self.runtime.services

    @property
    def api(self) -> TerminalAPI:
        if self.runtime.api is None:
            raise RuntimeError("the scratch runtime has no Terminal API")
        return self.runtime.api

    def query(self, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        return self.services.store.query(sql, params)

    def value(self, tag: str) -> object:
        assert self.runtime.plant is not None
        return self.runtime.plant.table.get(tag).value

    def quality(self, tag: str) -> str:
        assert self.runtime.plant is not None
        return str(self.runtime.plant.table.get(tag).quality.value)

    def credentials(self, user_id: str) -> Credentials:
        return Credentials(self.passwords[user_id], user_id)

    async def login(self, user_id: str, origin: Origin = CONSOLE) -> Session:
        return await self.api.login(user_id, self.passwords[user_id], origin)

    def scratch_dir(self, name: str) -> Path:
        """A new folder of the scratch root for one check (never reused)."""
        path = self.root / f"{name}-{secrets.token_hex(3)}"
        path.mkdir()
        return path


async def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (then a clear error)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not within {timeout:g} s: {what}")


def _good(plant: ScratchPlant, tag: str) -> bool:
    return plant.quality(tag) == "GOOD"


async def _create_records(data: Path, config: Path, passwords: dict[str, str]) -> None:
    admin_id, admin_name, _ = ADMIN
    temporary = new_password()
    services = await init_data_dir(data, config, admin_id, admin_name, temporary, CONSOLE)
    try:
        identity = services.identity

        async def activate(user_id: str, temp: str) -> None:
            password = new_password()
            session = await identity.login(user_id, temp, CONSOLE)
            await identity.change_password(session, temp, password)
            await identity.logout(session)
            passwords[user_id] = password

        await activate(admin_id, temporary)
        session = await identity.login(admin_id, passwords[admin_id], CONSOLE)
        signer = AdminCredentials(passwords[admin_id], admin_id)
        for user_id, name, role in USERS:
            issued = await services.admin.add_user(
                session, signer, user_id, name, (role,), "operational qualification"
            )
            await activate(user_id, issued)
        await identity.logout(session)
    finally:
        services.close()


@contextlib.asynccontextmanager
async def scratch_plant(
    root: Path, reference: Path, start_timeout: float = 60.0
) -> AsyncIterator[ScratchPlant]:
    """Simulators, a new data directory under ``root`` with the OQ users, a running runtime."""
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0, tick=None) as mic,
    ):
        config = reference_config(reference, root / "config", plc.port, mic.url)
        data = root / "data"
        passwords: dict[str, str] = {}
        await _create_records(data, config, passwords)
        runtime = Runtime(data, config)
        await runtime.start()
        plant = ScratchPlant(root, data, config, runtime, plc, mic, passwords)
        try:
            for tag in WAIT_TAGS:
                await wait_for(partial(_good, plant, tag), start_timeout, f"{tag} GOOD")
            yield plant
        finally:
            await plant.stop_runtime()
