"""Password hashing: argon2id off the event loop, with bounded concurrency.

Parameters and measurements: docs/decisions/0001-argon2-parameters.md.
"""

from __future__ import annotations

import asyncio
import os
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MEMORY_KIB", "PARALLELISM", "TIME_COST", "Argon2Hasher"]

# OWASP's first argon2id configuration (m=19 MiB, t=2, p=1): 20-46 ms a hash on this
# project's 2-core machines (measured; see the decision record), so login stays fast and
# the unauthenticated login endpoint is not a cheap CPU sink, while 19 MiB per guess keeps
# GPU cracking expensive. Raising them later is safe: needs_rehash migrates at login.
MEMORY_KIB = 19 * 1024
TIME_COST = 2
# One lane: the server parallelises across requests, not within one hash, so a hash never
# takes more than one core away from the event loop's neighbours.
PARALLELISM = 1


class Argon2Hasher:
    """`domain.ports.PasswordHasher` over argon2-cffi (argon2id).

    Hashes run in `asyncio.to_thread` (argon2-cffi releases the GIL) behind a semaphore.
    Create one per event loop (the semaphore binds to the loop that first waits on it).
    Passwords are limited to 1024 bytes upstream; nothing here depends on that.
    """

    def __init__(
        self,
        *,
        memory_kib: int = MEMORY_KIB,
        time_cost: int = TIME_COST,
        parallelism: int = PARALLELISM,
        max_concurrency: int | None = None,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,  # 256-bit tag: argon2-cffi's default and RFC 9106's recommendation
            salt_len=16,  # 128-bit random salt, RFC 9106's recommendation
            type=Type.ID,
        )
        # One hash at a time per core: each holds `memory_kib` of RAM and a whole core for
        # its duration, so more at once only thrashes caches and memory and makes every
        # login slower; a burst waits in this queue (cancellable) instead of in the kernel.
        self.max_concurrency = max_concurrency or os.cpu_count() or 1
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """False on a wrong password or a hash argon2 cannot read; never raises for those."""
        async with self._slots:
            return await asyncio.to_thread(self._verify_sync, password_hash, password)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            # VerifyMismatchError is a VerificationError; InvalidHashError covers
            # non-argon2 strings, truncated hashes and unparsable parameters.
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other (older, weaker) parameters.

        Called after a successful login, when the plain password is at hand, so outdated
        hashes migrate to the current parameters without forcing a password reset. An
        unreadable hash also answers True (it cannot have verified anyway).
        """
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    async def burn(self, password: str) -> None:
        """Spend the time of a failed verify, for logins naming an unknown account.

        Without it "no such user" answers in microseconds and "wrong password" in ~20-46 ms,
        which tells an attacker which usernames and emails exist.
        """
        await self.verify(await self._dummy(), password)

    async def _dummy(self) -> str:
        # Computed once, lazily, with the current parameters so it costs exactly what a
        # real verify costs. Two first callers may both compute it: harmless, and cheaper
        # than a lock bound to one event loop. Call burn("") at start to pay it up front.
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
