"""The runtime's periodic system checks: device clocks and the data directory's free space.

The rules are in ``hmi.core.system_checks``; this module only measures. It
runs on the runtime's clock, so a check falls due when that clock has moved
on by ``check_every_s`` (tests step a ``FakeClock`` instead of waiting a
minute). A device that cannot be reached is skipped: its communication
alarm already says so, and its clock alarm keeps its last state.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

from drivers.base import DeviceClock, Driver, DriverError, LinkState
from hmi.core.clock import Clock
from hmi.core.system_checks import SystemChecks

log = logging.getLogger(__name__)

TICK_S = 1.0
DEVICE_TIME_TIMEOUT_S = 10.0


class SystemWatch:
    def __init__(
        self,
        checks: SystemChecks,
        drivers: Mapping[str, Driver],
        data: Path,
        clock: Clock,
    ) -> None:
        self.checks = checks
        self.drivers = drivers
        self.data = data
        self.clock = clock
        now = clock.monotonic()
        self._clocks_due = now
        self._disk_due = now

    async def check_clocks(self) -> None:
        """Ask every reachable device that tells its time; compare with the runtime's clock."""
        for name, driver in self.drivers.items():
            if not isinstance(driver, DeviceClock) or driver.link_state is not LinkState.UP:
                continue
            sent = self.clock.now()
            try:
                device_time = await asyncio.wait_for(driver.device_time(), DEVICE_TIME_TIMEOUT_S)
            except (DriverError, TimeoutError) as exc:
                log.info("clock check of %s skipped: %s", name, exc)
                continue
            self.checks.device_clock(name, device_time, sent, self.clock.now())

    async def check_disk(self) -> None:
        usage = await asyncio.to_thread(shutil.disk_usage, self.data)
        self.checks.free_space(usage.free, str(self.data))

    async def tick(self) -> None:
        """Run whichever check is due (both at the first tick)."""
        now = self.clock.monotonic()
        if now >= self._clocks_due:
            self._clocks_due = now + self.checks.clock.check_every_s
            await self.check_clocks()
        if now >= self._disk_due:
            self._disk_due = now + self.checks.storage.check_every_s
            await self.check_disk()

    async def run(self) -> None:
        """The runtime's task: a failed check is logged and tried again at the next tick."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("system check failed; retrying")
            await asyncio.sleep(TICK_S)
