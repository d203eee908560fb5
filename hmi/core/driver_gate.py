"""Writes and driver rebuilds take turns.

An approved configuration may rebuild the drivers while the plant runs
(``hmi.runtime_config``). A write already sent to a device must get its answer
from the driver that sent it, so the rebuild waits for writes in flight; a
write asked for during the rebuild waits for it and then goes to the new
driver. Neither fails for the other's sake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class DriverGate:
    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writing = 0

    @property
    def held(self) -> bool:
        """True while the drivers are being rebuilt (writes wait)."""
        return not self._open.is_set()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Around one write: waits while the drivers are rebuilt, then counts as in flight."""
        await self._open.wait()
        self._writing += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._writing -= 1
            if self._writing == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def rebuilding(self, timeout_s: float) -> AsyncIterator[None]:
        """Hold new writes back and wait (at most ``timeout_s``) for those in flight.

        Raises TimeoutError, with writes open again, if they do not finish in time.
        """
        self._open.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            yield
        finally:
            self._open.set()
