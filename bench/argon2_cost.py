"""Password hashing cost with the server's argon2id parameters (server/security/passwords.py).

Three figures: the bare argon2-cffi call (median of `samples`), the same through
`Argon2Hasher` on an event loop (adds the thread hop and the semaphore), and the
throughput of `concurrent` verifies started at once through `Argon2Hasher` (median of
`rounds`) with its semaphore at 1, 2 (the server's default: the CPU count) and 4 slots.
This is the CPU price of every register, login and `burn` (the dummy verify for unknown
accounts).

    .venv/bin/python bench/argon2_cost.py --samples 20 --concurrent 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from argon2 import PasswordHasher, Type

from bench.common import percentiles
from server.security.passwords import (
    MEMORY_KIB,
    PARALLELISM,
    TIME_COST,
    Argon2Hasher,
)

PASSWORD = "correct horse battery"


def _ms_stats(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples), 2),
        "min": round(min(samples), 2),
        "max": round(max(samples), 2),
    }


def _timed(fn: Callable[[], object], samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def bare(samples: int) -> dict[str, Any]:
    hasher = PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )
    encoded = hasher.hash(PASSWORD)  # warm-up, and the hash the verifies check
    hash_ms = _timed(lambda: hasher.hash(PASSWORD), samples)
    verify_ms = _timed(lambda: hasher.verify(encoded, PASSWORD), samples)
    return {
        "parameters": encoded.rsplit("$", 2)[0],
        "hash_ms": _ms_stats(hash_ms),
        "verify_ms": _ms_stats(verify_ms),
    }


async def through_hasher(
    samples: int, concurrent: int, slots: list[int], rounds: int
) -> dict[str, Any]:
    hasher = Argon2Hasher()
    encoded = await hasher.hash(PASSWORD)
    hash_ms: list[float] = []
    verify_ms: list[float] = []
    for _ in range(samples):
        t = time.perf_counter()
        await hasher.hash(PASSWORD)
        hash_ms.append((time.perf_counter() - t) * 1000)
    for _ in range(samples):
        t = time.perf_counter()
        ok = await hasher.verify(encoded, PASSWORD)
        verify_ms.append((time.perf_counter() - t) * 1000)
        assert ok

    runs = []
    for n in slots:
        rates: list[float] = []
        waits: list[float] = []
        for _ in range(rounds):
            limited = Argon2Hasher(max_concurrency=n)

            async def one(h: Argon2Hasher = limited, waits: list[float] = waits) -> None:
                t = time.perf_counter()
                assert await h.verify(encoded, PASSWORD)
                waits.append((time.perf_counter() - t) * 1000)

            t = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(concurrent)))
            rates.append(concurrent / (time.perf_counter() - t))
        runs.append(
            {
                "slots": n,
                "verifies_per_round": concurrent,
                "rounds": rounds,
                "verifies_per_s_median": round(statistics.median(rates), 1),
                "verifies_per_s_best": round(max(rates), 1),
                "verifies_per_s_rounds": [round(r, 1) for r in rates],
                "latency_ms": percentiles(waits),
            }
        )
    return {
        "default_slots": hasher.max_concurrency,
        "hash_ms": _ms_stats(hash_ms),
        "verify_ms": _ms_stats(verify_ms),
        "concurrent": runs,
    }


def run(
    *,
    samples: int = 20,
    concurrent: int = 40,
    rounds: int = 3,
    slots: tuple[int, ...] = (1, 2, 4),
) -> dict[str, Any]:
    if not 1 <= samples <= 1000 or not 1 <= concurrent <= 1000 or not 1 <= rounds <= 20:
        raise ValueError("1 ≤ samples, concurrent ≤ 1000 and 1 ≤ rounds ≤ 20, please")
    started = time.perf_counter()
    result: dict[str, Any] = {
        "samples": samples,
        "cpus": os.cpu_count(),
        "bare": bare(samples),
        "argon2_hasher": asyncio.run(through_hasher(samples, concurrent, list(slots), rounds)),
    }
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="sequential runs per figure")
    parser.add_argument("--concurrent", type=int, default=40, help="verifies started at once")
    parser.add_argument("--rounds", type=int, default=3, help="repeats per slot count")
    args = parser.parse_args(argv)
    result = run(samples=args.samples, concurrent=args.concurrent, rounds=args.rounds)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
