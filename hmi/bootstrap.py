"""The composition root: configuration → store → core services.

The only place that knows which implementation serves which port. The CLI,
the runtime and the tests all build their services here.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from hmi.core.clock import Clock, SystemClock
from hmi.core.config import PlantConfig, load_config
from hmi.core.esign import ESignService
from hmi.core.identity import IdentityService
from hmi.core.passwords import check_new_user, check_password_rules
from hmi.core.records import NotificationEntry, Origin, SecurityEntry
from hmi.core.useradmin import UserAdministration
from hmi.notify import CommandNotifier
from hmi.security import Argon2Hasher
from hmi.store.anchors import AnchorLog
from hmi.store.db import Store
from hmi.store.recorder import StoreRecorder
from hmi.store.verify import VerifyReport, verify_records


def local_origin(terminal_id: str | None = None) -> Origin:
    """The origin of a command typed on this host: its terminal ID and who/where from.

    Over SSH the client's address is the source; otherwise the local account.
    """
    host = socket.gethostname()
    terminal = terminal_id or os.environ.get("HMI_TERMINAL") or f"cli@{host}"
    ssh = os.environ.get("SSH_CLIENT", "").split()
    try:
        account = getpass.getuser()
    except (KeyError, OSError):
        account = str(os.getuid())
    source = f"ssh:{ssh[0]} ({account})" if ssh else f"local:{account}@{host}"
    return Origin(terminal, source)


@dataclass
class Services:
    config: PlantConfig
    store: Store
    recorder: StoreRecorder
    identity: IdentityService
    esign: ESignService
    admin: UserAdministration
    integrity: VerifyReport | None = None

    def close(self) -> None:
        self.store.close()


def _services(store: Store, config: PlantConfig, clock: Clock) -> Services:
    recorder = StoreRecorder(store)
    policy = config.security
    identity = IdentityService(
        recorder,
        recorder,
        Argon2Hasher(policy.argon2),
        policy,
        clock,
        CommandNotifier(policy.notify),
    )
    esign = ESignService(identity, policy, clock)
    return Services(config, store, recorder, identity, esign, UserAdministration(identity, esign))


def check_integrity(services: Services, origin: Origin) -> VerifyReport:
    """The start-up check: verify every chain; a failure is recorded and notified."""
    store = services.store
    with store.reader() as cur:
        report = verify_records(
            cur,
            store.data_dir.keys,
            AnchorLog(store.data_dir.anchors),
            images=store.data_dir.images,
        )
    services.integrity = report
    if not report.ok:
        first = "; ".join(str(p) for p in report.problems[:5])
        text = f"Record integrity check FAILED at start-up: {report.summary()}. {first}"
        services.recorder.commit_now(
            [
                SecurityEntry("integrity_check_failed", None, origin, detail=text[:2000]),
                NotificationEntry("admin", "integrity", text, subject="records"),
                NotificationEntry("qa", "integrity", text, subject="records"),
            ]
        )
    return report


def open_services(
    data: Path,
    config_dir: Path | None,
    *,
    clock: Clock | None = None,
    verify: bool = True,
    origin: Origin | None = None,
) -> Services:
    config = load_config(config_dir)
    clk = clock or SystemClock()
    store = Store.open(data, clock=clk)
    services = _services(store, config, clk)
    if verify:
        try:
            check_integrity(services, origin or local_origin())
        except Exception:
            store.close()
            raise
    return services


async def init_data_dir(
    data: Path,
    config_dir: Path | None,
    admin_id: str,
    admin_name: str,
    temporary: str,
    origin: Origin,
    *,
    clock: Clock | None = None,
) -> Services:
    """``hmi init``: a new data directory and its first administrator (audited)."""
    config = load_config(config_dir)
    check_new_user(admin_id, admin_name, ("admin",))
    check_password_rules(config.security, admin_id, temporary)
    clk = clock or SystemClock()
    store = Store.create(data, clock=clk)
    services = _services(store, config, clk)
    try:
        await services.admin.create_first_admin(admin_id, admin_name, temporary, origin)
        store.checkpoint_now()
    except Exception:
        store.close()
        raise
    return services
