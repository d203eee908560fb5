"""The runtime: starts and stops everything in order; no UI.

Order matters for the records: the store opens and verifies itself first (a
broken chain is recorded before anything else happens), then history and
attribution are attached to the tag table, and only then do the drivers
start, so no value from a device is ever seen before it can be recorded.
Stopping reverses it: drivers stop, history flushes, the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hmi.backups import ScheduledBackups
from hmi.bootstrap import Services, open_services
from hmi.core.alarm_actions import AlarmOperations
from hmi.core.alarms import AlarmEngine
from hmi.core.api import TerminalAPI
from hmi.core.api_admin import AdminDesk
from hmi.core.api_alarms import AlarmDesk
from hmi.core.api_config import ConfigDesk
from hmi.core.api_procedures import ProcedureDesk
from hmi.core.api_records import RecordsDesk
from hmi.core.api_reports import ReportDesk
from hmi.core.approvals import ApprovalQueue
from hmi.core.attribution import WriteAttribution
from hmi.core.captures import CaptureCommands
from hmi.core.clock import Clock, SystemClock
from hmi.core.commands import CommandService
from hmi.core.identity import Session
from hmi.core.records import AuditEntry, Origin, SecurityEntry
from hmi.core.scanner import LinkEvent
from hmi.core.sequencer import Overdue, Sequencer
from hmi.core.system_checks import SystemChecks
from hmi.core.tags import TagChange
from hmi.plant import Plant, build_plant
from hmi.records.images import StoreCaptureArchive
from hmi.records.report_maker import REPORTS_FOLDER, StoreReportMaker
from hmi.runtime_config import ConfigControl
from hmi.store.alarm_journal import StoreAlarmJournal
from hmi.store.approval_orphans import withdraw_orphaned_approvals
from hmi.store.history import HistoryWriter, Loss
from hmi.store.procedure_replay import restore_runs
from hmi.store.procedures import ProcedureRecorder
from hmi.store.records_desk import StoreRecordsReader
from hmi.watch import SystemWatch

log = logging.getLogger(__name__)

SESSION_CHECK_S = 1.0
APPROVALS_CHECK_S = 5.0
ALARM_TICK_S = 1.0
PROCEDURE_TICK_S = 5.0
OVERDUE_PRIORITY = 2
FINISHED = ("complete", "aborted")


def runtime_origin() -> Origin:
    return Origin("runtime", f"host:{socket.gethostname()}")


@dataclass
class RuntimeEvents:
    """Callbacks a front end may set to show what the runtime noticed."""

    on_link: Callable[[LinkEvent], None] | None = None
    on_session_warning: Callable[[Session], None] | None = None
    on_session_ended: Callable[[Session], None] | None = None


class Runtime(ConfigControl):
    def __init__(
        self,
        data: Path,
        config_dir: Path | None,
        *,
        clock: Clock | None = None,
        environ: dict[str, str] | None = None,
        allow_unapproved_config: bool = False,
    ) -> None:
        self.data = data
        self.allow_unapproved_config = allow_unapproved_config
        self.config_blocked: str | None = None
        """Set when started on a configuration that is not the approved version."""
        self.config_dir = config_dir
        self.clock = clock or SystemClock()
        self.environ = environ
        self.origin = runtime_origin()
        self.events = RuntimeEvents()
        self.services: Services | None = None
        self.plant: Plant | None = None
        self.history: HistoryWriter | None = None
        self.attribution: WriteAttribution | None = None
        self.commands: CommandService | None = None
        self.approvals: ApprovalQueue | None = None
        self.api: TerminalAPI | None = None
        self.alarms: AlarmEngine | None = None
        self.alarm_journal: StoreAlarmJournal | None = None
        self.alarm_ops: AlarmOperations | None = None
        self.sequencer: Sequencer | None = None
        self.records_reader: StoreRecordsReader | None = None
        self._overdue: dict[str, int] = {}
        """Run ID → the step whose overdue alarm is raised."""
        self.system_watch: SystemWatch | None = None
        self.backups: ScheduledBackups | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        services = await asyncio.to_thread(
            open_services, self.data, self.config_dir, clock=self.clock, origin=self.origin
        )
        await self._check_config(services)
        self.services = services
        try:
            plant = build_plant(
                services.config, clock=self.clock, environ=self.environ, on_link=self._on_link
            )
            writable = [t.name for t in services.config.tags if t.writable]
            self.attribution = WriteAttribution(
                writable, clock=self.clock, on_unattributed=self._on_unattributed
            )
            self.history = HistoryWriter(services.store, on_loss=self._on_history_loss)
            plant.table.attribute = self.attribution.attribute
            plant.table.subscribe(self.history.record)
            self._start_alarms(services, plant)
            self.plant = plant
            self.sequencer = Sequencer(
                services.config.procedures,
                plant.table,
                services.identity,
                services.esign,
                ProcedureRecorder(services.store),
                self.clock,
            )
            self.commands = CommandService(
                services.config,
                services.identity,
                services.esign,
                services.recorder,
                plant.table,
                plant.drivers,
                self.attribution,
                self.clock,
                gate=self.sequencer,
            )
            self.commands.blocked = self.config_blocked
            services.change.on_approved = self._config_approved
            self.approvals = ApprovalQueue(
                self.commands, self.clock, services.config.commands.approval_expiry_s
            )
            await self._resume_records(services)
            self.api = self._api(services, plant)
            services.recorder.commit_soon(
                [SecurityEntry("runtime_started", None, self.origin, actor_id="system")]
            )
            await plant.start()
            services.identity.on_session_ended = self._session_ended
            self._tasks.append(asyncio.create_task(self._watch_sessions(), name="sessions"))
            self._tasks.append(asyncio.create_task(self._expire_approvals(), name="approvals"))
            self._tasks.append(asyncio.create_task(self._tick_alarms(), name="alarms"))
            self._tasks.append(asyncio.create_task(self._tick_procedures(), name="procedures"))
            watch = self._start_system_checks(services, plant)
            self._tasks.append(asyncio.create_task(watch.run(), name="system checks"))
            assert self.alarms is not None
            self.backups = ScheduledBackups(
                services.recorder,
                self.alarms,
                services.config.backup,
                self.data,
                self.origin,
                environ=self.environ,
            )
            self.backups.start()
        except BaseException:
            await self.stop()
            raise

    async def _resume_records(self, services: Services) -> None:
        """Before any terminal is served: requests a crash left open are withdrawn (so a
        new request is never caught by it), and open procedure runs continue where their
        records say they were. A run that cannot be rebuilt is an alarm, not a refusal to
        supervise the plant."""
        assert self.sequencer is not None and self.alarms is not None
        await withdraw_orphaned_approvals(services.recorder)
        try:
            await restore_runs(services.store, self.sequencer)
        except Exception as exc:
            log.exception("procedure runs could not be restored")
            self.alarms.raise_system(
                "procedure_restore_failed",
                f"Open procedure runs could not be restored after the restart: {exc}",
                1,
            )

    def _api(self, services: Services, plant: Plant) -> TerminalAPI:
        """The Terminal API over every service: what terminals may ask, and nothing else."""
        self.records_reader = StoreRecordsReader.of(services)
        assert self.commands is not None and self.approvals is not None
        assert self.alarm_ops is not None and self.sequencer is not None
        terminals = services.config.terminals
        recorder = services.recorder
        return TerminalAPI(
            services.identity,
            plant.table,
            self.commands,
            self.approvals,
            alarms=AlarmDesk(services.identity, self.alarm_ops, plant.table, terminals, recorder),
            procedures=ProcedureDesk(self.sequencer, terminals, recorder),
            captures=CaptureCommands(
                self.commands, plant.cameras, StoreCaptureArchive(services.store)
            ),
            admin=AdminDesk(services.identity, services.admin, terminals, recorder),
            config=ConfigDesk(
                services.identity,
                services.esign,
                services.config.directory,
                terminals,
                recorder,
                services.change,
            ),
            records=RecordsDesk(services.identity, plant.table, recorder, self.records_reader),
            reports=ReportDesk(
                services.identity,
                recorder,
                StoreReportMaker(services.store),
                self.clock,
                services.store.data_dir.root / REPORTS_FOLDER,
            ),
        )

    async def stop(self) -> None:
        if self.backups is not None:
            await self.backups.stop()
            self.backups = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.plant is not None:
            await self.plant.stop()
            self.plant = None
        if self.alarm_journal is not None:
            await asyncio.to_thread(self.alarm_journal.flush)
            self.alarm_journal = None
        if self.history is not None:
            await asyncio.to_thread(self.history.close)
            self.history = None
        if self.services is not None:
            if self.approvals is not None:
                await self.approvals.withdraw_all("the runtime stopped")
                self.approvals = None
            self.services.identity.on_session_ended = None  # no terminal to send back now
            for session in list(self.services.identity.sessions.values()):
                await self.services.identity.end_session(session, "runtime_stopped")
            await self.services.recorder.commit(
                [SecurityEntry("runtime_stopped", None, self.origin, actor_id="system")]
            )
            if self.records_reader is not None:
                await asyncio.to_thread(self.records_reader.cancel_all)
                self.records_reader = None
            await asyncio.to_thread(self.services.close)
            self.services = None

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what the runtime records on its own ---------------------------------------------

    def _record(self, entry: AuditEntry) -> None:
        if self.services is not None:
            self.services.recorder.commit_soon([entry])

    def _on_link(self, event: LinkEvent) -> None:
        if self.alarms is not None:
            self.alarms.on_link(event)
        self._record(
            AuditEntry(
                f"device_link_{event.state.value.lower()}",
                "done",
                "system",
                "Custos runtime",
                self.origin,
                target=f"device:{event.device}",
                detail=event.reason or None,
            )
        )
        if self.events.on_link is not None:
            self.events.on_link(event)

    def _on_unattributed(self, change: TagChange) -> None:
        """A writable tag changed at the device without a command from this system."""
        self._record(
            AuditEntry(
                "unattributed_change",
                "done",
                change.actor,
                None,
                self.origin,
                target=change.tag,
                new_value=None if change.value is None else str(change.value),
                detail="changed at the device, not by a command of this system",
            )
        )

    def _on_history_loss(self, losses: list[Loss]) -> None:
        log.error("tag history fell behind: %s", losses)

    def _session_ended(self, session: Session) -> None:
        if self.events.on_session_ended is not None:
            self.events.on_session_ended(session)

    async def _watch_sessions(self) -> None:
        """Inactivity warnings and automatic logout (SUP-10); supervision goes on."""
        assert self.services is not None
        identity = self.services.identity
        while True:
            await asyncio.sleep(SESSION_CHECK_S)
            for session in identity.sessions_to_warn():
                if self.events.on_session_warning is not None:
                    self.events.on_session_warning(session)
            await identity.expire_sessions()  # each ended one goes to _session_ended

    def _start_alarms(self, services: Services, plant: Plant) -> None:
        """Alarms see every change the tag table logs; a failed start-up check is an alarm."""
        self.alarm_journal = StoreAlarmJournal(services.store)
        self.alarms = AlarmEngine(
            services.config.alarms, clock=self.clock, journal=self.alarm_journal
        )
        self.alarm_ops = AlarmOperations(self.alarms, services.identity, services.esign)
        plant.table.subscribe(self.alarms.on_change)
        if self.config_blocked is not None:
            self.alarms.raise_system(
                "config_unapproved",
                "Configuration not approved: commands are blocked (see hmi config diff).",
                1,
            )
        report = services.integrity
        if report is not None and not report.ok:
            self.alarms.raise_system(
                "integrity_check_failed",
                f"Record integrity check failed at start-up: {report.summary()}",
                1,
            )

    def _start_system_checks(self, services: Services, plant: Plant) -> SystemWatch:
        """Clock drift, free disk space and lockouts as system alarms."""
        assert self.alarms is not None
        config = services.config
        checks = SystemChecks(self.alarms, config.clock, config.storage)
        services.identity.on_lockout = checks.lockout
        self.system_watch = SystemWatch(checks, plant.drivers, self.data, self.clock)
        return self.system_watch

    async def _tick_alarms(self) -> None:
        """On/off delays and shelving expiry run on time, not only on tag changes."""
        while True:
            await asyncio.sleep(ALARM_TICK_S)
            if self.alarms is not None:
                try:
                    self.alarms.tick()
                except Exception:
                    log.exception("alarm tick failed; retrying")

    async def _expire_approvals(self) -> None:
        """Approval requests nobody decided in time are recorded and reported (SUP-8)."""
        while True:
            await asyncio.sleep(APPROVALS_CHECK_S)
            if self.approvals is not None:
                try:
                    await self.approvals.expire()
                except Exception:
                    log.exception("expiring approval requests failed; retrying")

    async def _tick_procedures(self) -> None:
        """Steps past their time limit: recorded, supervisors notified, a system alarm raised."""
        while True:
            await asyncio.sleep(PROCEDURE_TICK_S)
            try:
                await self.check_procedures()
            except Exception:
                log.exception("checking procedure time limits failed; retrying")

    async def check_procedures(self) -> list[Overdue]:
        """One pass of the overdue check; an alarm clears once its run leaves the step."""
        if self.sequencer is None or self.alarms is None:
            return []
        found = await self.sequencer.tick()
        for overdue in found:
            self._overdue[overdue.run_id] = self.sequencer.runs[overdue.run_id].step_index
            self.alarms.raise_system(
                f"overdue_step.{overdue.run_id[:8]}", overdue.message, OVERDUE_PRIORITY
            )
        for run_id, step_index in list(self._overdue.items()):
            now = self.sequencer.runs.get(run_id)
            if now is None or now.step_index != step_index or now.state.value in FINISHED:
                self.alarms.clear_system(f"overdue_step.{run_id[:8]}")
                del self._overdue[run_id]
        return found
