"""Notifications through an external channel (e.g. a mail command) configured by the plant.

A lockout must reach administrators whether or not the locked user is
around, so the runtime both stores the notification (terminals show it) and
hands it to this hook. The hook never raises: a broken mail relay is
logged, and the stored notification remains.
"""

from __future__ import annotations

import asyncio
import logging

from hmi.core.config import NotifyPolicy
from hmi.core.records import NotificationEntry

log = logging.getLogger(__name__)


class CommandNotifier:
    def __init__(self, policy: NotifyPolicy) -> None:
        self.policy = policy
        self.failures = 0

    async def notify(self, notification: NotificationEntry) -> None:
        if not self.policy.command:
            return
        text = f"[{notification.kind}] to {notification.audience}: {notification.message}\n"
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.policy.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await asyncio.wait_for(
                proc.communicate(text.encode()), timeout=self.policy.timeout_s
            )
            if proc.returncode:
                self.failures += 1
                log.error("notification command exited %s: %s", proc.returncode, err[:200])
        except (OSError, TimeoutError) as exc:
            self.failures += 1
            log.error("notification command failed: %s", exc)
