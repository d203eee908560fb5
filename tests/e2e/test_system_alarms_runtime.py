"""System alarms and the inactivity warning in the running runtime (SUP-6, SUP-10).

The host side runs on a ``FakeClock``: stepping it is how a test makes a
device's clock look drifted (the simulated OPC UA server keeps real time) and
how it reaches the next check or the inactivity timeout without waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from custos_testkit import ADMIN_ID, ADMIN_TEMP, ORIGIN, demo_config, until, write_config

from drivers.sim.microscope import MicroscopeServer
from drivers.sim.plc import BioreactorPLC
from hmi.bootstrap import init_data_dir
from hmi.core.alarms import AlarmEngine, AlarmState
from hmi.core.clock import FakeClock
from hmi.core.config import StorageCheck
from hmi.core.errors import AuthenticationError, SessionEnded
from hmi.core.identity import Session
from hmi.runtime import Runtime
from hmi.store.verify import verify_data_dir

pytestmark = pytest.mark.timeout(90)

S = AlarmState


def journal(runtime: Runtime, alarm_id: str) -> list[tuple[object, ...]]:
    assert runtime.services is not None
    return runtime.services.store.query(
        "SELECT event, to_state, actor_id, message FROM alarm_journal WHERE alarm_id = ? "
        "ORDER BY seq",
        [alarm_id],
    )


def state(alarms: AlarmEngine, alarm_id: str) -> AlarmState | None:
    alarm = alarms.alarms.get(alarm_id)
    return None if alarm is None else alarm.state


async def plain_runtime_data(tmp_path: Path, plant: str, clock: FakeClock) -> tuple[Path, Path]:
    """A data directory for a plant without devices (the checks need none)."""
    config = write_config(tmp_path / "config", plant='[plant]\nname = "Test plant"\n' + plant)
    data = tmp_path / "data"
    (await init_data_dir(data, config, ADMIN_ID, "Ada", ADMIN_TEMP, ORIGIN, clock=clock)).close()
    return data, config


async def test_device_clock_drift_raises_then_clears(tmp_path: Path) -> None:
    async with (
        BioreactorPLC(host="127.0.0.1", port=0) as plc,
        MicroscopeServer(host="127.0.0.1", port=0) as mic,
    ):
        config = demo_config(tmp_path / "config", plc.port, mic.url)
        with (config / "plant.toml").open("a") as f:
            f.write("\n[clock]\nmax_drift_s = 30\ncheck_every_s = 60\n")
        clock = FakeClock(datetime.now(UTC) - timedelta(seconds=120))  # host 2 min behind
        data = tmp_path / "data"
        (await init_data_dir(data, config, ADMIN_ID, "Ada", ADMIN_TEMP, ORIGIN)).close()
        async with Runtime(data, config, clock=clock) as runtime:
            assert runtime.alarms is not None
            alarms = runtime.alarms
            await until(
                lambda: state(alarms, "SYSTEM.clock_drift.MIC1") is S.UNACK_ACTIVE,
                what="clock drift alarm",
            )
            message = alarms.get("SYSTEM.clock_drift.MIC1").message
            assert (
                message.startswith("Clock of device MIC1 is 12")
                and "s ahead of the host" in message
            )
            assert "SYSTEM.clock_drift.PLC1" not in alarms.alarms  # Modbus tells no time
            clock.advance(datetime.now(UTC) - clock.now())  # in step again, and 2 min later
            await until(
                lambda: state(alarms, "SYSTEM.clock_drift.MIC1") is S.RTN_UNACK,
                what="clock drift cleared",
            )
            await until(lambda: len(journal(runtime, "SYSTEM.clock_drift.MIC1")) == 2, what="rows")
            rows = journal(runtime, "SYSTEM.clock_drift.MIC1")
            assert [r[:3] for r in rows] == [
                ("activate", "UNACK_ACTIVE", "system"),
                ("clear", "RTN_UNACK", "system"),
            ]
    assert verify_data_dir(data).ok


async def test_disk_nearly_full_raises_below_the_minimum_and_clears_above(tmp_path: Path) -> None:
    clock = FakeClock()
    data, config = await plain_runtime_data(
        tmp_path, "[storage]\nmin_free_mb = 1000000000\ncheck_every_s = 30\n", clock
    )
    async with Runtime(data, config, clock=clock) as runtime:
        assert runtime.alarms is not None and runtime.system_watch is not None
        alarms = runtime.alarms
        await until(
            lambda: state(alarms, "SYSTEM.disk_nearly_full") is S.UNACK_ACTIVE, what="disk alarm"
        )
        message = alarms.get("SYSTEM.disk_nearly_full").message
        assert "(minimum 1000000000 MB)" in message and str(data) in message
        runtime.system_watch.checks.storage = StorageCheck(min_free_mb=1, check_every_s=30)
        clock.advance(30)  # the next check is due
        await until(
            lambda: state(alarms, "SYSTEM.disk_nearly_full") is S.RTN_UNACK, what="disk cleared"
        )
        await until(lambda: len(journal(runtime, "SYSTEM.disk_nearly_full")) == 2, what="rows")
    assert verify_data_dir(data).ok


async def test_a_lockout_raises_an_alarm_that_reveals_no_more_than_the_event(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    data, config = await plain_runtime_data(tmp_path, "", clock)
    async with Runtime(data, config, clock=clock) as runtime:
        assert runtime.alarms is not None and runtime.api is not None
        for _ in range(3):  # lockout_attempts = 3
            with pytest.raises(AuthenticationError):
                await runtime.api.login(ADMIN_ID, "not-the-password-1", ORIGIN)
        alarm = runtime.alarms.get(f"SYSTEM.account_lockout.{ADMIN_ID}")
        assert (alarm.state, alarm.priority) == (S.RTN_UNACK, 2)
        assert ADMIN_ID in alarm.message and ORIGIN.terminal_id in alarm.message
        assert "Ada" not in alarm.message and ORIGIN.source not in alarm.message
        assert "not-the-password-1" not in alarm.message
        await until(
            lambda: len(journal(runtime, f"SYSTEM.account_lockout.{ADMIN_ID}")) == 2, what="rows"
        )
    assert verify_data_dir(data).ok


async def test_inactivity_warning_then_logout_by_timeout_is_recorded(tmp_path: Path) -> None:
    clock = FakeClock()
    data, config = await plain_runtime_data(tmp_path, "", clock)
    warned: list[Session] = []
    ended: list[Session] = []
    async with Runtime(data, config, clock=clock) as runtime:
        assert runtime.api is not None and runtime.services is not None
        api = runtime.api
        runtime.events.on_session_warning = warned.append
        runtime.events.on_session_ended = ended.append
        session = await api.login(ADMIN_ID, ADMIN_TEMP, ORIGIN)
        assert api.session_status(session).seconds_left == 600  # inactivity_timeout_s
        clock.advance(539)
        api.touch(session)  # activity restarts the countdown
        clock.advance(539)
        status = api.session_status(session)
        assert (status.seconds_left, status.warning) == (61, False)
        clock.advance(1)  # warning_before_s = 60 s before the timeout
        assert api.session_status(session).warning
        await until(lambda: warned == [session], what="inactivity warning")
        assert ended == []
        clock.advance(60)
        await until(lambda: ended == [session], what="logout by timeout")
        with pytest.raises(SessionEnded):
            api.session_status(session)
        rows = runtime.services.store.query(
            "SELECT user_id, terminal_id FROM security_events WHERE event = 'inactivity_timeout'"
        )
        assert rows == [(ADMIN_ID, ORIGIN.terminal_id)]
    assert verify_data_dir(data).ok
