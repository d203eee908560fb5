"""The runtime's scheduled backups (11.10(c), OPS-3): APScheduler 3 on the runtime's loop.

The copy itself runs in a worker thread (``hmi.store.backup``: the database is
copied on the writer thread between transactions), so the event loop keeps
scanning. Every outcome is in the audit trail; a failure is also the system
alarm ``SYSTEM.backup_failed``, cleared by the next backup that succeeds.

Stopping waits for a backup in progress to finish and be recorded: its copy
thread cannot be interrupted, and the store must not close under it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from hmi.core.alarms import AlarmEngine
from hmi.core.config import BackupPolicy
from hmi.core.errors import BackupError
from hmi.core.records import Origin
from hmi.store import backup as bk
from hmi.store.recorder import StoreRecorder

log = logging.getLogger(__name__)

ALARM = "backup_failed"
RUNTIME_ACTOR = ("system", "Custos runtime")


def trigger(policy: BackupPolicy) -> CronTrigger | None:
    """The policy's schedule: ``schedule`` (cron) wins over ``daily_at``; None for neither."""
    if policy.schedule:
        return CronTrigger.from_crontab(policy.schedule)
    if policy.daily_at:
        hour, minute = policy.daily_at.split(":")
        return CronTrigger(hour=int(hour), minute=int(minute))
    return None


class ScheduledBackups:
    def __init__(
        self,
        recorder: StoreRecorder,
        alarms: AlarmEngine,
        policy: BackupPolicy,
        data: Path,
        origin: Origin,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.recorder = recorder
        self.alarms = alarms
        self.policy = policy
        self.dest = policy.to or bk.default_destination(data)
        self.origin = origin
        self.environ = os.environ if environ is None else environ
        self.scheduler: AsyncIOScheduler | None = None
        self._running: asyncio.Task[bk.BackupResult | None] | None = None

    def start(self) -> None:
        """Schedule on the running loop; nothing is scheduled when backups are disabled."""
        when = trigger(self.policy) if self.policy.enabled else None
        if when is None:
            return
        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        self.scheduler.add_job(
            self._scheduled,
            when,
            id="backup",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
        self.scheduler.start()

    async def stop(self) -> None:
        """No further backups; one in progress finishes and is recorded first."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        running = self._running
        if running is not None and not running.done():
            log.info("waiting for the backup in progress to finish")
            await asyncio.shield(running)

    async def _scheduled(self) -> None:
        await self.run_once()

    async def run_once(self) -> bk.BackupResult | None:
        """One backup now: recorded either way; a failure raises the system alarm.

        The backup runs as a task of its own, so a caller that is cancelled does
        not cancel it between the copy and its audit record.
        """
        self._running = asyncio.ensure_future(self._backup())
        return await asyncio.shield(self._running)

    async def _backup(self) -> bk.BackupResult | None:
        store = self.recorder.store
        try:
            passphrase = self.policy.passphrase(self.environ)
            result = await asyncio.to_thread(
                bk.backup,
                store,
                self.dest,
                by="Custos runtime (scheduled)",
                now=store.clock.now(),
                keep=self.policy.keep,
                passphrase=passphrase,
            )
        except BackupError as exc:
            log.error("scheduled backup failed: %s", exc.message)
            self.alarms.raise_system(ALARM, f"Backup failed: {exc.message}", 2)
            await self.recorder.commit(
                [
                    bk.audit_entry(
                        "backup", "failed", self.origin, self.dest, exc.message, RUNTIME_ACTOR
                    )
                ]
            )
            return None
        await self.recorder.commit(
            [
                bk.audit_entry(
                    "backup", "done", self.origin, result.path, result.summary(), RUNTIME_ACTOR
                )
            ]
        )
        self.alarms.clear_system(ALARM)
        return result
