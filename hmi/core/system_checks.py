"""System alarms for clock drift, low disk space and account lockouts (SUP-6).

This module decides; it does no I/O. ``hmi.watch`` does the measuring (it
asks each driver that has a ``DeviceClock`` for its time and the filesystem
for its free space) and hands the results here, so the rules can be tested
with plain numbers and a fake clock.

A drifted clock and a nearly full disk are *conditions*: the alarm stays
active while the condition holds and returns to normal when it ends. A
lockout is an *event*: the account stays locked until an administrator
unlocks it, which may happen in another process (``hmi users unlock``), so
the alarm returns to normal at once and waits only for acknowledgement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from hmi.core.config import ClockCheck, StorageCheck
from hmi.core.records import Origin

CLOCK_DRIFT = "clock_drift"
DISK_NEARLY_FULL = "disk_nearly_full"
ACCOUNT_LOCKOUT = "account_lockout"

CLOCK_DRIFT_PRIORITY = 2
DISK_NEARLY_FULL_PRIORITY = 2
ACCOUNT_LOCKOUT_PRIORITY = 2

MB = 1024 * 1024


class SystemAlarms(Protocol):
    """The part of ``hmi.core.alarms.AlarmEngine`` the checks use."""

    def raise_system(self, key: str, message: str, priority: int = 1) -> None: ...

    def clear_system(self, key: str) -> None: ...


def drift_s(device_time: datetime, sent: datetime, received: datetime) -> float:
    """Device clock minus host clock, in seconds (positive: the device is ahead).

    The device read its clock somewhere between ``sent`` and ``received``
    (host times around the request); the midpoint halves the error that the
    round trip adds.
    """
    midpoint = sent + (received - sent) / 2
    return (device_time - midpoint).total_seconds()


class SystemChecks:
    """Turns measurements into system alarms, raised and cleared through the alarm engine."""

    def __init__(
        self,
        alarms: SystemAlarms,
        clock: ClockCheck | None = None,
        storage: StorageCheck | None = None,
    ) -> None:
        self.alarms = alarms
        self.clock = clock or ClockCheck()
        self.storage = storage or StorageCheck()

    def device_clock(
        self, device: str, device_time: datetime, sent: datetime, received: datetime
    ) -> float:
        """One reading of ``device``'s clock; returns the drift in seconds."""
        drift = drift_s(device_time, sent, received)
        key = f"{CLOCK_DRIFT}.{device}"
        limit = self.clock.max_drift_s
        if abs(drift) > limit:
            side = "ahead of" if drift > 0 else "behind"
            self.alarms.raise_system(
                key,
                f"Clock of device {device} is {abs(drift):.1f} s {side} the host clock "
                f"(limit {limit:g} s); its timestamps are not reliable",
                CLOCK_DRIFT_PRIORITY,
            )
        else:
            self.alarms.clear_system(key)
        return drift

    def free_space(self, free_bytes: int, where: str) -> None:
        """The free space of the filesystem holding the data directory ``where``."""
        minimum = self.storage.min_free_mb
        if minimum and free_bytes < minimum * MB:
            self.alarms.raise_system(
                DISK_NEARLY_FULL,
                f"Disk nearly full: {free_bytes // MB} MB free for the records in {where} "
                f"(minimum {minimum} MB); when it is full, actions that must be recorded "
                "are refused",
                DISK_NEARLY_FULL_PRIORITY,
            )
        else:
            self.alarms.clear_system(DISK_NEARLY_FULL)

    def lockout(self, user_id: str, origin: Origin) -> None:
        """An account was locked: what the ``lockout`` security event says, no more."""
        key = f"{ACCOUNT_LOCKOUT}.{user_id}"
        self.alarms.raise_system(
            key,
            f"Account {user_id} locked after repeated failed attempts at terminal "
            f"{origin.terminal_id}",
            ACCOUNT_LOCKOUT_PRIORITY,
        )
        self.alarms.clear_system(key)
