"""The runtime's side of configuration change control (SUP-12).

At start the configuration on disk is compared with the last approved
version: a difference refuses the start, or (when explicitly allowed) starts
with every command blocked and a system alarm. When a version is approved
while the runtime runs, procedures are reloaded in place; every other change
waits for the next start, which a low-priority system alarm announces.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from hmi.bootstrap import Services, unapproved_config
from hmi.core.alarms import AlarmEngine
from hmi.core.config import load_config
from hmi.core.config_versions import ConfigVersion, changed_files
from hmi.core.errors import ConfigError
from hmi.core.records import AuditEntry, Origin, SecurityEntry
from hmi.core.sequencer import Sequencer

log = logging.getLogger(__name__)


class ConfigControl:
    """Mixed into ``Runtime``: the attributes below are the runtime's."""

    config_dir: Path | None
    origin: Origin
    allow_unapproved_config: bool
    config_blocked: str | None
    services: Services | None
    sequencer: Sequencer | None
    alarms: AlarmEngine | None

    async def _check_config(self, services: Services) -> None:
        """Disk against the last approved version: refuse to start, or start with every
        command refused when ``allow_unapproved_config`` says so (SUP-12)."""
        try:
            differences = await asyncio.to_thread(
                unapproved_config, services, self.config_dir, self.origin
            )
        except BaseException:
            await asyncio.to_thread(services.close)
            raise
        if not differences:
            return
        where = self.config_dir or "(built-in defaults)"
        listing = "\n".join(f"  {d}" for d in differences)
        text = f"The configuration in {where} is not the approved version:\n{listing}"
        if not self.allow_unapproved_config:
            services.recorder.commit_now(
                [
                    SecurityEntry(
                        "start_refused_unapproved_config",
                        None,
                        self.origin,
                        "system",
                        detail=text[:2000],
                    )
                ]
            )
            await asyncio.to_thread(services.close)
            raise ConfigError(
                f"{text}\nSubmit it for approval (hmi config submit), or start with "
                "--allow-unapproved-config to supervise with every command blocked."
            )
        self.config_blocked = (
            "The configuration is not approved; every command is blocked until the approved "
            "configuration is running."
        )
        services.recorder.commit_now(
            [
                SecurityEntry(
                    "started_unapproved_config", None, self.origin, "system", detail=text[:2000]
                )
            ]
        )

    async def _config_approved(self, base: ConfigVersion, version: ConfigVersion) -> str:
        """An approved version in a running system: procedures are reloaded in place (open
        runs keep the definition they started with); anything else waits for a restart,
        announced by a low-priority system alarm."""
        changed = changed_files(base.files, version.files)
        target = f"config:version {version.version}"
        if self.sequencer is not None and all(n.startswith("procedures/") for n in changed):
            try:
                config = await asyncio.to_thread(load_config, self.config_dir)
            except ConfigError as exc:
                log.error("approved configuration did not load: %s", exc)
            else:
                self.sequencer.procedures = {p.id: p for p in config.procedures}
                text = "Applied now: procedures reloaded; open runs keep their definition."
                await self._record_system("config_version_applied", target, text)
                return text
        text = f"Configuration version {version.version} is approved; it takes effect at restart."
        await self._record_system("config_version_pending_restart", target, text)
        if self.alarms is not None:
            self.alarms.raise_system("config_restart_needed", text, 4)
        return "It takes effect at restart."

    async def _record_system(self, action: str, target: str, detail: str) -> None:
        if self.services is None:
            return
        entry = AuditEntry(
            action, "done", "system", "Custos runtime", self.origin, target=target, detail=detail
        )
        await self.services.recorder.commit([entry])
