"""Scheduled backups in the running runtime: audit trail and the backup_failed alarm (OPS-3)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from custos_testkit import ADMIN_ID, ADMIN_TEMP, ORIGIN, until, write_config

from hmi.backups import ALARM
from hmi.bootstrap import init_data_dir
from hmi.core.alarms import AlarmState
from hmi.core.clock import FakeClock
from hmi.runtime import Runtime
from hmi.store.backup import complete_backups
from hmi.store.restore import restore, verify_backup

pytestmark = pytest.mark.timeout(90)


async def runtime_data(tmp_path: Path, backup: str) -> tuple[Path, Path]:
    plant = '[plant]\nname = "Test plant"\n\n[backup]\n' + backup
    config = write_config(tmp_path / "config", plant=plant)
    data = tmp_path / "data"
    clock = FakeClock()
    (await init_data_dir(data, config, ADMIN_ID, "Ada", ADMIN_TEMP, ORIGIN, clock=clock)).close()
    return data, config


def backup_audit(runtime: Runtime) -> list[tuple[object, ...]]:
    assert runtime.services is not None
    return runtime.services.store.query(
        "SELECT outcome, actor_id FROM audit_records WHERE action = 'backup' ORDER BY seq"
    )


async def test_failure_raises_the_alarm_and_success_clears_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    dest = blocker / "backups"
    data, config = await runtime_data(
        tmp_path, f'keep = 2\nto = "{dest}"\nschedule = "0 3 * * *"\n'
    )
    clock = FakeClock()
    async with Runtime(data, config, clock=clock) as runtime:
        assert runtime.backups is not None and runtime.alarms is not None
        [job] = runtime.backups.scheduler.get_jobs()  # type: ignore[union-attr]
        assert str(job.trigger).startswith("cron[") and "hour='3'" in str(job.trigger)

        assert await runtime.backups.run_once() is None
        alarm = runtime.alarms.alarms[f"SYSTEM.{ALARM}"]
        assert alarm.state is AlarmState.UNACK_ACTIVE
        assert str(dest) in alarm.message

        blocker.unlink()
        for _ in range(3):
            clock.advance(60)  # backups are named by their time
            assert await runtime.backups.run_once() is not None
        assert alarm.state is not AlarmState.UNACK_ACTIVE
        assert backup_audit(runtime) == [("failed", "system")] + [("done", "system")] * 3
        keys = runtime.services.store.data_dir.keys  # type: ignore[union-attr]
    kept = complete_backups(dest)
    assert len(kept) == 2
    verify_backup(kept[-1], keys)


async def test_disabled_backups_schedule_nothing(tmp_path: Path) -> None:
    data, config = await runtime_data(tmp_path, "enabled = false\n")
    async with Runtime(data, config, clock=FakeClock()) as runtime:
        assert runtime.backups is not None and runtime.backups.scheduler is None


async def test_stopping_waits_for_the_backup_in_progress(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    data, config = await runtime_data(tmp_path, f'to = "{dest}"\nschedule = "0 3 * * *"\n')
    async with Runtime(data, config, clock=FakeClock()) as runtime:
        backups, services = runtime.backups, runtime.services
        assert backups is not None and services is not None
        writer_free = threading.Event()
        services.store.submit(lambda tx: writer_free.wait(30))  # the copy waits behind this
        in_progress = asyncio.create_task(backups.run_once())
        await until(lambda: backups._running is not None, what="the backup started")

        stopping = asyncio.create_task(backups.stop())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(stopping), 0.5)
        assert not in_progress.done()
        writer_free.set()
        await asyncio.wait_for(stopping, 30)
        assert in_progress.done()
        result = in_progress.result()
        assert result is not None and complete_backups(dest) == [result.path]
        assert backup_audit(runtime) == [("done", "system")]
        keys = services.store.data_dir.keys
    verify_backup(result.path, keys)


async def test_scheduled_backups_seal_the_private_keys_when_configured(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    policy = f'to = "{dest}"\nprivate_keys = true\npassphrase_env = "PLANT_BACKUP_PASS"\n'
    data, config = await runtime_data(tmp_path, policy)
    async with Runtime(data, config, clock=FakeClock(), environ={}) as runtime:
        assert runtime.backups is not None and runtime.alarms is not None
        assert await runtime.backups.run_once() is None
        assert "PLANT_BACKUP_PASS" in runtime.alarms.alarms[f"SYSTEM.{ALARM}"].message
    environ = {"PLANT_BACKUP_PASS": "a long enough passphrase"}
    async with Runtime(data, config, clock=FakeClock(), environ=environ) as runtime:
        assert runtime.backups is not None
        result = await runtime.backups.run_once()
    assert result is not None and result.private_keys
    restored = restore(result.path, tmp_path / "restored", passphrase=environ["PLANT_BACKUP_PASS"])
    assert restored.ok
