"""The demonstration: simulated plant, demo records and users, the runtime.

Demo users get their working passwords the way real users do: an
administrator issues a temporary password and each user changes it at first
login, so the demo's own records show the full account life cycle.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.bootstrap import Services, init_data_dir, local_origin
from hmi.core.errors import ConfigError
from hmi.core.useradmin import Credentials
from hmi.runtime import Runtime


def demo_config_dir() -> Path:
    """config/demo of the working directory, else of the source tree this package runs from."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / "config" / "demo" / "plant.toml").is_file():
            return base / "config" / "demo"
    raise ConfigError("config/demo not found: run `hmi demo` from the project folder.")


def working_config(data: Path, source: Path, *, fresh: bool) -> Path:
    """The demo's own copy of config/demo, beside its data directory.

    Configuration is under change control: an approved change is written to
    the configuration directory. The demo approves into its copy, never into
    the source tree; a fresh data directory starts from a fresh copy.
    """
    copy = data.with_name(f"{data.name}-config")
    if fresh and copy.exists():
        shutil.rmtree(copy)
    if not copy.exists():
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.png", "*.jpg", "*.tmp"))
    return copy


def demo_drop_folder(config: Path) -> Path:
    """The skid camera's drop folder as the demo's cameras.toml names it, created if missing.

    The simulated PLC writes its pictures where the configured camera looks
    for them; reading the folder from the file keeps the two in step, and
    creating it lets the configuration check pass on a fresh checkout.
    """
    with (config / "cameras.toml").open("rb") as f:
        cameras = tomllib.load(f).get("camera", [])
    for camera in cameras:
        if camera.get("kind") == "modbus_trigger" and camera.get("device") == "PLC1":
            folder = Path(camera["drop_folder"])
            folder = folder if folder.is_absolute() else config / folder
            folder.mkdir(parents=True, exist_ok=True)
            return folder
    raise ConfigError(f"{config / 'cameras.toml'}: no modbus_trigger camera on PLC1")


DEMO_DATA = Path("demo-data")
MODBUS_PORT = 15020
OPCUA_PORT = 14840


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    full_name: str
    role: str
    password: str


DEMO_USERS = (
    DemoUser("admin", "Ada Administrator", "admin", "Keys-2026!"),
    DemoUser("operator", "Olga Operator", "operator", "Valve-2026"),
    DemoUser("supervisor", "Sam Supervisor", "supervisor", "Review-2026"),
    DemoUser("engineer", "Eddie Engineer", "engineer", "Config-2026"),
    DemoUser("qa", "Quinn Quality", "qa", "Audit-2026"),
)


async def _activate(services: Services, user_id: str, temporary: str, password: str) -> None:
    origin = local_origin("demo-setup")
    session = await services.identity.login(user_id, temporary, origin)
    await services.identity.change_password(session, temporary, password)
    await services.identity.logout(session)


async def create_demo_records(data: Path, config: Path, *, reset: bool) -> bool:
    """A demo data directory with the demo users; returns True if it was (re)created."""
    if data.exists() and not reset:
        return False
    if data.exists():
        shutil.rmtree(data)
    admin = DEMO_USERS[0]
    temporary = "Temp-setup-1"
    origin = local_origin("demo-setup")
    services = await init_data_dir(data, config, admin.user_id, admin.full_name, temporary, origin)
    try:
        await _activate(services, admin.user_id, temporary, admin.password)
        session = await services.identity.login(admin.user_id, admin.password, origin)
        credentials = Credentials(admin.password, admin.user_id)
        for user in DEMO_USERS[1:]:
            issued = await services.admin.add_user(
                session, credentials, user.user_id, user.full_name, (user.role,), "demo user"
            )
            await _activate(services, user.user_id, issued, user.password)
        await services.identity.logout(session)
    finally:
        services.close()
    return True


async def run_demo(
    data: Path,
    config: Path,
    *,
    reset: bool,
    on_ready: Callable[[Runtime, bool], None],
    front: Callable[[Runtime], Awaitable[None]],
) -> None:
    """Simulators, records and runtime; ``front`` (the terminal UI) runs until it returns."""
    config = working_config(data, config, fresh=reset or not data.exists())
    drop = demo_drop_folder(config)
    created = await create_demo_records(data, config, reset=reset)
    async with (
        BioreactorPLC("127.0.0.1", MODBUS_PORT, 1, noise=0.02, realtime=True, drop_folder=drop),
        MicroscopeServer("127.0.0.1", OPCUA_PORT),
        Runtime(data, config) as runtime,
    ):
        on_ready(runtime, created)
        await front(runtime)
