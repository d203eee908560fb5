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

from hmi.core.change_control import ChangeControl
from hmi.core.clock import Clock, SystemClock
from hmi.core.config import PlantConfig, load_config
from hmi.core.config_apply import baseline_entry
from hmi.core.config_check import read_files
from hmi.core.config_versions import current_version, describe_differences, fold
from hmi.core.esign import ESignService
from hmi.core.identity import IdentityService
from hmi.core.passwords import check_new_user, check_password_rules
from hmi.core.records import AuditEntry, NotificationEntry, Origin, SecurityEntry
from hmi.core.useradmin import UserAdministration
from hmi.notify import CommandNotifier
from hmi.security import Argon2Hasher
from hmi.store.anchors import AnchorLog
from hmi.store.config_versions import StoreConfigVersions
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
    change: ChangeControl
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
    change = ChangeControl(identity, esign, recorder, StoreConfigVersions(store), config.directory)
    return Services(
        config, store, recorder, identity, esign, UserAdministration(identity, esign), change
    )


def unapproved_config(services: Services, config_dir: Path | None, origin: Origin) -> list[str]:
    """How the configuration on disk differs from the approved version (empty: it is the one).

    Data written before change control has no versions: the configuration on disk
    becomes the baseline version, recorded as a security event.
    """
    disk = read_files(config_dir)
    current = current_version(fold(StoreConfigVersions(services.store).read_events()))
    if current is None:
        text = (
            "No approved configuration version existed (data from before change control); "
            f"the configuration in {config_dir or '(built-in defaults)'} was recorded as the "
            "baseline version 1."
        )
        services.recorder.commit_now(
            [
                baseline_entry(disk, "system", "Custos runtime", origin, text),
                SecurityEntry("config_baseline_recorded", None, origin, "system", detail=text),
            ]
        )
        return []
    return describe_differences(current.files, disk)


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
        text = (
            f"Version 1 is the configuration {config_dir or '(built-in defaults)'} held at "
            f"hmi init, approved by the installing administrator {admin_name} ({admin_id}); "
            "no signature exists at init."
        )
        files = read_files(config_dir)
        await services.recorder.commit(
            [
                baseline_entry(files, admin_id, admin_name, origin, text),
                AuditEntry(
                    "config_version_baseline",
                    "done",
                    admin_id,
                    admin_name,
                    origin,
                    target="config:version 1",
                    new_value=f"sha256:{baseline_entry(files, '', '', origin, '').config_sha256}",
                    detail=text,
                ),
            ]
        )
        store.checkpoint_now()
    except Exception:
        store.close()
        raise
    return services
