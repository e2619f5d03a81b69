"""Argon2Hasher: real argon2id hashes, off the event loop, bounded, constant-ish cost."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import argon2
import pytest

from domain.ports import PasswordHasher
from server.security.passwords import MEMORY_KIB, PARALLELISM, TIME_COST, Argon2Hasher


@pytest.fixture
def hasher() -> Argon2Hasher:
    return Argon2Hasher()


def test_satisfies_the_port() -> None:
    port: PasswordHasher = Argon2Hasher()
    assert port is not None


def test_parameters_meet_owasp() -> None:
    # OWASP Password Storage Cheat Sheet: argon2id, m >= 19 MiB, t >= 2, p = 1.
    assert MEMORY_KIB >= 19 * 1024
    assert TIME_COST >= 2
    assert PARALLELISM == 1


async def test_hash_is_argon2id_with_the_parameters(hasher: Argon2Hasher) -> None:
    encoded = await hasher.hash("correct horse battery staple")
    assert encoded.startswith(f"$argon2id$v=19$m={MEMORY_KIB},t={TIME_COST},p={PARALLELISM}$")
    assert encoded != await hasher.hash("correct horse battery staple")  # salted


async def test_verify(hasher: Argon2Hasher) -> None:
    encoded = await hasher.hash("pässwörd ✓")
    assert await hasher.verify(encoded, "pässwörd ✓") is True
    assert await hasher.verify(encoded, "pässwörd") is False
    assert await hasher.verify(encoded, "") is False


@pytest.mark.parametrize(
    "bad_hash",
    [
        "",
        "not a hash",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",  # truncated
        "$argon2id$v=19$m=x,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
async def test_verify_never_raises_on_a_malformed_hash(hasher: Argon2Hasher, bad_hash: str) -> None:
    assert await hasher.verify(bad_hash, "password") is False


async def test_needs_rehash(hasher: Argon2Hasher) -> None:
    current = await hasher.hash("pw")
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    argon2_defaults = argon2.PasswordHasher().hash("pw")  # p=4: other parameters too

    assert hasher.needs_rehash(current) is False
    assert hasher.needs_rehash(weaker) is True
    assert hasher.needs_rehash(argon2_defaults) is True
    assert hasher.needs_rehash("garbage") is True
    # The weaker hash still verifies (parameters are read from the hash), so a login can
    # succeed and then store a fresh hash.
    assert await hasher.verify(weaker, "pw") is True


async def test_burn_costs_what_a_failed_verify_costs(hasher: Argon2Hasher) -> None:
    encoded = await hasher.hash("pw")
    await hasher.burn("warm-up")  # the dummy hash is computed once, lazily

    async def timed(action: object) -> float:
        start = time.perf_counter()
        await action  # type: ignore[misc]
        return time.perf_counter() - start

    verify_times = [await timed(hasher.verify(encoded, "wrong")) for _ in range(5)]
    burn_times = [await timed(hasher.burn("wrong")) for _ in range(5)]
    ratio = statistics.median(burn_times) / statistics.median(verify_times)
    assert 0.5 < ratio < 2.0, (verify_times, burn_times)


async def test_burn_never_succeeds_or_raises(hasher: Argon2Hasher) -> None:
    await hasher.burn("")
    dummy = hasher._dummy_hash
    assert dummy is not None and dummy.startswith("$argon2id$")
    await hasher.burn("x" * 1024)
    assert hasher._dummy_hash == dummy  # computed once


async def test_hashing_does_not_block_the_event_loop() -> None:
    # Proven by what happened, not by timings: each hash ran on a thread other than the
    # loop's, and the loop kept running (ticking) while that hash was in progress.
    hasher = Argon2Hasher(time_cost=6, max_concurrency=1)
    loop_thread = threading.get_ident()
    ticks = 0
    observed: list[tuple[int, int]] = []  # (hashing thread, loop ticks during the hash)
    real = hasher._hasher

    class Watching:
        def hash(self, password: str) -> str:
            before = ticks
            result = real.hash(password)
            # A loop that is not blocked ticks within milliseconds; a blocked one never.
            deadline = time.monotonic() + 5
            while ticks == before and time.monotonic() < deadline:
                time.sleep(0.001)
            observed.append((threading.get_ident(), ticks - before))
            return result

    hasher._hasher = Watching()  # type: ignore[assignment]
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(hasher.hash(f"pw{i}") for i in range(3)))
    done.set()
    await task
    assert len(observed) == 3
    assert all(thread != loop_thread for thread, _ in observed)
    assert all(during > 0 for _, during in observed), observed


async def test_concurrency_is_bounded() -> None:
    hasher = Argon2Hasher(max_concurrency=2)
    lock = threading.Lock()
    running = 0
    peak = 0

    class Counting:
        """Wraps the real argon2 hasher, recording how many hashes run at once."""

        def __init__(self, inner: argon2.PasswordHasher) -> None:
            self.inner = inner

        def hash(self, password: str) -> str:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            try:
                time.sleep(0.02)
                return self.inner.hash(password)
            finally:
                with lock:
                    running -= 1

    hasher._hasher = Counting(hasher._hasher)  # type: ignore[assignment]
    results = await asyncio.gather(*(hasher.hash(f"pw{i}") for i in range(6)))
    assert len(set(results)) == 6
    assert peak == 2
