"""The runtime's scheduled backups (11.10(c), OPS-3): APScheduler 3 on the runtime's loop.

The copy itself runs in a worker thread (``hmi.store.backup``: the database is
copied on the writer thread between transactions), so the event loop keeps
scanning. Every outcome is in the audit trail; a failure is also the system
alarm ``SYSTEM.backup_failed``, cleared by the next backup that succeeds.
"""

from __future__ import annotations

import asyncio
import logging
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
    ) -> None:
        self.recorder = recorder
        self.alarms = alarms
        self.policy = policy
        self.dest = policy.to or bk.default_destination(data)
        self.origin = origin
        self.scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Schedule on the running loop; nothing is scheduled when backups are disabled."""
        when = trigger(self.policy) if self.policy.enabled else None
        if when is None:
            return
        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        self.scheduler.add_job(
            self.run_once,
            when,
            id="backup",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None

    async def run_once(self) -> bk.BackupResult | None:
        """One backup now: recorded either way; a failure raises the system alarm."""
        store = self.recorder.store
        try:
            result = await asyncio.to_thread(
                bk.backup,
                store,
                self.dest,
                by="Custos runtime (scheduled)",
                now=store.clock.now(),
                keep=self.policy.keep,
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
        removed = ", ".join(p.name for p in result.removed) or "none"
        detail = f"{result.files} files, {result.bytes} bytes; removed: {removed}"
        await self.recorder.commit(
            [bk.audit_entry("backup", "done", self.origin, result.path, detail, RUNTIME_ACTOR)]
        )
        self.alarms.clear_system(ALARM)
        return result
