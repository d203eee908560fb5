"""The runtime's side of configuration change control (SUP-12).

At start the configuration on disk is compared with the last approved
version: a difference refuses the start, or (when explicitly allowed) starts
with every command blocked and a system alarm. When a version is approved
while the runtime runs, what is safe is applied in place (procedures, alarms,
tag fields no driver uses; in a quiet plant, drivers rebuilt for new devices
and tags: see ``hmi.core.config_live``); every other change waits for the
next start, which a low-priority system alarm announces.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from drivers.base import Driver
from hmi.bootstrap import Services, unapproved_config
from hmi.core.alarm_reload import CurrentValue, drop_device_alarms, reload_alarms
from hmi.core.alarms import AlarmEngine
from hmi.core.api import TerminalAPI
from hmi.core.approvals import ApprovalQueue
from hmi.core.attribution import WriteAttribution
from hmi.core.clock import Clock
from hmi.core.commands import CommandService
from hmi.core.config import PlantConfig, load_config
from hmi.core.config_live import TAGS_FILE, LivePlan, plan_apply
from hmi.core.config_versions import ConfigVersion, changed_files
from hmi.core.errors import ConfigError
from hmi.core.records import AuditEntry, Origin, SecurityEntry
from hmi.core.scanner import LinkEvent, Scanner
from hmi.core.sequencer import Sequencer
from hmi.core.tag_table import TagDef
from hmi.core.tags import Quality, TagScalar
from hmi.plant import ConfiguredCamera, Plant, build_cameras, build_drivers

log = logging.getLogger(__name__)

RESTART_NEEDED = "config_restart_needed"
WRITES_FINISH_S = 30.0
"""How long a rebuild waits for writes and captures in flight before giving up."""


class ConfigControl:
    """Mixed into ``Runtime``: the attributes below are the runtime's."""

    config_dir: Path | None
    origin: Origin
    allow_unapproved_config: bool
    config_blocked: str | None
    services: Services | None
    sequencer: Sequencer | None
    alarms: AlarmEngine | None
    plant: Plant | None
    commands: CommandService | None
    attribution: WriteAttribution | None
    approvals: ApprovalQueue | None
    clock: Clock
    environ: dict[str, str] | None
    api: TerminalAPI | None

    def _on_link(self, event: LinkEvent) -> None: ...

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
        """An approved version in a running system: what is safe is applied in place
        (``hmi.core.config_live``), the rest waits for a restart, announced by a
        low-priority system alarm naming the files. Says exactly which is which."""
        changed = changed_files(base.files, version.files)
        target = f"config:version {version.version}"
        plan = LivePlan(waiting=tuple(changed))
        approved: PlantConfig | None = None
        if self.services is not None:
            try:
                approved = await asyncio.to_thread(load_config, self.config_dir)
            except ConfigError as exc:
                log.error("approved configuration did not load: %s", exc)
            else:
                plan = plan_apply(
                    changed,
                    self.services.config,
                    approved,
                    procedures=self.sequencer is not None,
                    busy=self._busy(),
                )
        applied: list[str] = []
        if approved is not None and plan.rescan:
            rebuilt = await self._rescan(approved, version.version)
            if rebuilt:
                applied.append(rebuilt)
            else:
                assert self.services is not None
                plan = plan_apply(
                    changed,
                    self.services.config,
                    approved,
                    procedures=self.sequencer is not None,
                    busy="the drivers could not be rebuilt now (see the log)",
                )
        waiting = set(plan.waiting)
        if approved is not None:
            applied += self._apply_live(plan, approved, version.version, waiting)
        if self.api is not None and self.api.config is not None:
            self.api.config.now_approved(version.files)  # after the live apply: terminals refetch
        text = ""
        if applied:
            text = f"Applied now: {'; '.join(applied)}."
            await self._record_system("config_version_applied", target, text)
        if waiting:
            files = ", ".join(sorted(waiting)) + (f" ({plan.held})" if plan.held else "")
            pending = (
                f"Configuration version {version.version} is approved; "
                f"waiting for a restart: {files}."
            )
            await self._record_system("config_version_pending_restart", target, pending)
            if self.alarms is not None:
                self.alarms.raise_system(RESTART_NEEDED, pending, 4)
            later = f"At restart: {files}."
            text = f"{text} {later}" if text else f"It takes effect at restart: {files}."
        elif approved is not None and self._restart_no_longer_needed(approved):
            assert self.alarms is not None
            self.alarms.clear_system(RESTART_NEEDED)
            done = "The running system is now the approved configuration: no restart is needed."
            await self._record_system("config_restart_not_needed", target, done)
            text = f"{text} {done}" if text else done
        return text or "Applied now: nothing in it changes the running system."

    def _restart_no_longer_needed(self, approved: PlantConfig) -> bool:
        """An earlier version waits for a restart, but this one brought the running
        system to the approved configuration (it reverted what waited, say)."""
        if self.alarms is None or self.services is None:
            return False
        alarm = self.alarms.alarms.get(f"SYSTEM.{RESTART_NEEDED}")
        return alarm is not None and alarm.active and self.services.config == approved

    def _apply_live(
        self, plan: LivePlan, approved: PlantConfig, version: int, waiting: set[str]
    ) -> list[str]:
        """Apply the safe parts of ``plan``; one line per part saying what changed. A part
        the running system turns down after all joins ``waiting``."""
        assert self.services is not None
        done: list[str] = []
        update: dict[str, object] = {}
        if plan.tags and self.plant is not None:
            defs = [TagDef.from_config(t) for t in approved.tags]
            try:
                changed = self.plant.table.redefine(defs)
            except ValueError as exc:
                log.error("approved tags not applied in place: %s", exc)
                waiting.add(TAGS_FILE)
            else:
                if self.commands is not None:
                    self.commands.retag(approved.tags)
                update["tags"] = approved.tags
                done.append("tag definitions " + (", ".join(changed) or "unchanged"))
        if plan.alarms and self.alarms is not None and self.plant is not None:
            reload = reload_alarms(self.alarms, approved.alarms, version, self._current(self.plant))
            update["alarms"] = approved.alarms
            done.append(reload.summary())
        if plan.procedures and self.sequencer is not None:
            self.sequencer.procedures = {p.id: p for p in approved.procedures}
            update["procedures"] = approved.procedures
            done.append("procedures reloaded; open runs keep their definition")
        if update:
            self.services.config = self.services.config.model_copy(update=update)
        return done

    def _busy(self) -> str:
        """Why the drivers cannot be rebuilt now: open runs and waiting commands hold the
        running set of tags and devices. Empty when the plant is quiet."""
        if self.sequencer is not None and any(
            r.state.value not in ("complete", "aborted") for r in self.sequencer.runs.values()
        ):
            return "a procedure run is open"
        if self.approvals is not None and self.approvals.pending:
            return "a command is waiting for approval"
        return ""

    async def _rescan(self, approved: PlantConfig, version: int) -> str:
        """Rebuild drivers, scanner and cameras for the approved devices and tags and let
        them connect; everything holding the plant keeps the same table and the same
        driver and camera maps, refilled. Empty if the new drivers cannot be built (the
        running ones are left as they are)."""
        plant = self.plant
        if plant is None or self.services is None:
            return ""
        try:
            drivers = build_drivers(approved, environ=self.environ)
            cameras = build_cameras(approved, drivers)
        except ConfigError as exc:
            log.error("approved plant not applied in place: %s", exc)
            return ""
        if self.commands is None:
            return await self._rebuild(plant, approved, version, drivers, cameras)
        try:
            async with self.commands.driver_gate.rebuilding(WRITES_FINISH_S):
                return await self._rebuild(plant, approved, version, drivers, cameras)
        except TimeoutError:
            log.error("approved plant not applied in place: a write or capture did not finish")
            return ""

    async def _rebuild(
        self,
        plant: Plant,
        approved: PlantConfig,
        version: int,
        drivers: dict[str, Driver],
        cameras: dict[str, ConfiguredCamera],
    ) -> str:
        assert self.services is not None
        await plant.stop()
        added, removed, moved = plant.table.reconfigure(
            TagDef.from_config(t) for t in approved.tags
        )
        gone = sorted(set(plant.drivers) - set(drivers))
        new_devices = sorted(set(drivers) - set(plant.drivers))
        plant.drivers.clear()
        plant.drivers.update(drivers)
        plant.cameras.clear()
        plant.cameras.update(cameras)
        plant.scanner = Scanner(
            plant.table, plant.drivers, approved.scan_classes, clock=self.clock,
            on_link=self._on_link,
        )  # fmt: skip
        plant.config = approved
        if self.attribution is not None:
            self.attribution.set_writable(t.name for t in approved.tags if t.writable)
        if self.commands is not None:
            self.commands.retag(approved.tags)
        if self.alarms is not None:
            drop_device_alarms(self.alarms, gone, version)
        self.services.config = self.services.config.model_copy(
            update={"devices": approved.devices, "tags": approved.tags, "cameras": approved.cameras}
        )
        await plant.start()
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("devices added", new_devices), ("devices removed", gone),
                ("tags added", added), ("tags removed", removed), ("tags re-addressed", moved),
            )
            if names
        ]  # fmt: skip
        return "drivers rebuilt and reconnecting" + (f" ({'; '.join(parts)})" if parts else "")

    @staticmethod
    def _current(plant: Plant) -> CurrentValue:
        table = plant.table

        def current(tag: str) -> tuple[TagScalar | None, Quality] | None:
            try:
                value = table.get(tag)
            except KeyError:
                return None
            return value.value, value.quality

        return current

    async def _record_system(self, action: str, target: str, detail: str) -> None:
        if self.services is None:
            return
        entry = AuditEntry(
            action, "done", "system", "Custos runtime", self.origin, target=target, detail=detail
        )
        await self.services.recorder.commit([entry])
