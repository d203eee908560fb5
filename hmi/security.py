"""Password hashing with Argon2id (argon2-cffi), off the event loop.

One hash costs about 0.1 s and 1.6 cores with the RFC 9106 parameters; run on
the event loop it would stall every terminal, so every call goes to a worker
thread. The parameters come from ``security.toml`` so that tests can use
cheap ones; each hash carries its own parameters, so changing them later
does not invalidate stored passwords.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hmi.core.config import Argon2Params


class Argon2Hasher:
    def __init__(self, params: Argon2Params | None = None) -> None:
        p = params or Argon2Params()
        self._hasher = _Argon2(
            time_cost=p.time_cost,
            memory_cost=p.memory_kib,
            parallelism=p.parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash("custos-timing-equaliser")

    def hash_now(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_now(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hash_now, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify_now, password_hash, password)

    async def burn(self, password: str) -> None:
        await asyncio.to_thread(self.verify_now, self._dummy, password)
