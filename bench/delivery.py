"""Live delivery, Plaza against its peers: one author, N online followers, M posts.

For each target (bench/targets.py: the floor, Litestar channels, python-socketio, Plaza;
one process, or two sharing Redis with --fleet) N sockets are opened from several load
generator processes (bench/wsclients.py) and each waits for the author's posts; the
author sends M posts over HTTP at a fixed rate (open loop). Per target:

- post → socket latency: arrival (CLOCK_MONOTONIC in the load generator) - the moment the
  HTTP request started, over every (socket, post) pair: p50 / p99 / max;
- deliveries received against N x M, duplicates (zero lost is the requirement);
- server CPU per delivered event: utime + stime of the target's processes (/proc) during
  the run, over N x M; the post's own HTTP write is included.

    .venv/bin/python bench/delivery.py --followers 200 --posts 20 --rate 10 [--fleet]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.common import cpu_seconds, median, percentiles, raise_nofile, rss_kib, write_result
from bench.sockets import SocketFleet
from bench.targets import KINDS, Target, target

PREFIX = "bench-"
FILLER = "the quick brown fox jumps over the lazy dog, then posts about it on plaza"
WARMUP = 3


def _generators(sockets: int) -> int:
    """Load generator processes: one per ~1,500 sockets, at least 2."""
    return max(2, min(6, -(-sockets // 1500)))


async def _post(http: httpx.AsyncClient, t: Target, seq: int) -> tuple[float, float, int]:
    start = time.monotonic()
    r = await http.post(
        t.post_url, json={"content": f"{PREFIX}{seq} {FILLER}"}, headers=t.post_headers
    )
    return start, time.monotonic() - start, r.status_code


async def measure(
    t: Target,
    posts: int,
    rate: float,
    drain: float,
    around: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
) -> dict[str, Any]:
    """`around` wraps the measured posts only (a profiler, in bench/profile.py)."""
    n = len(t.tokens)
    async with (
        SocketFleet(t.kind, _generators(n)) as sockets,
        httpx.AsyncClient(timeout=60) as http,
    ):
        opened = await sockets.open(t.specs(), concurrency=100)
        if opened["opened"] != n:
            raise RuntimeError(f"{t.name}: {opened['opened']}/{n} sockets opened: {opened}")
        # Warm-up posts (numbered past the measured ones) pay first-use costs off the record.
        warm = list(range(posts, posts + WARMUP))
        for seq in warm:
            await _post(http, t, seq)
        await sockets.wait(warm, drain)
        await asyncio.sleep(0.2)

        with around():
            cpu0 = cpu_seconds(t.pids)
            run0 = time.monotonic()
            tasks = []
            for seq in range(posts):
                delay = run0 + seq / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(_post(http, t, seq)))
            sent = await asyncio.gather(*tasks)
            done = await sockets.wait(list(range(posts)), drain)
            cpu = cpu_seconds(t.pids) - cpu0
            run_s = time.monotonic() - run0
        rss = sum(rss_kib(p) for p in t.pids)
        per_socket, duplicates, closed = await sockets.arrivals()
        await sockets.close()

    starts = {seq: s for seq, (s, _, _) in enumerate(sent)}
    latencies = [
        (at - starts[seq]) * 1000
        for arrivals in per_socket
        for seq, at in arrivals.items()
        if seq in starts
    ]
    received = len(latencies)
    expected = n * posts
    return {
        "target": t.name,
        "followers": n,
        "posts": posts,
        "rate_per_s": rate,
        "deliveries_expected": expected,
        "deliveries_received": received,
        "lost": expected - received,
        "duplicates": duplicates,
        "sockets_closed": closed,
        "http_errors": sum(1 for _, _, code in sent if code >= 300),
        "latency_ms": percentiles(latencies),
        "post_http_ms": percentiles([d * 1000 for _, d, _ in sent]),
        "server_cpu_s": round(cpu, 3),
        "cpu_us_per_delivery": round(cpu / expected * 1e6, 2) if expected else None,
        "server_cpu_pct": round(100 * cpu / run_s, 1),
        "server_rss_kib": rss,
        "open_s": opened["seconds"],
        "short_sockets": done["short"],
    }


def run_one(kind: str, followers: int, posts: int, rate: float, fleet: bool) -> dict[str, Any]:
    raise_nofile(followers * 2 + 512)
    with target(kind, followers, fleet=fleet) as t:
        return asyncio.run(measure(t, posts, rate, drain=30.0))


def run(
    *,
    kinds: tuple[str, ...] = KINDS,
    followers: int = 200,
    posts: int = 20,
    rate: float = 10.0,
    repeats: int = 1,
    fleet: bool = False,
) -> dict[str, Any]:
    """Every target at one audience size, `repeats` times interleaved; medians."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeats):
        for kind in kinds:
            if fleet and kind == "floor":
                continue
            print(f"  … delivery {kind} x{followers}{' fleet' if fleet else ''}", file=sys.stderr)
            try:
                runs.setdefault(kind, []).append(run_one(kind, followers, posts, rate, fleet))
            except Exception as error:
                runs.setdefault(kind, []).append({"error": f"{type(error).__name__}: {error}"})
    summary: dict[str, Any] = {}
    for kind, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            summary[kind] = {"error": rs[0]["error"]}
            continue
        summary[kind] = {
            "target": ok[0]["target"],
            "cpu_us_per_delivery": round(median([r["cpu_us_per_delivery"] for r in ok]), 2),
            "p50_ms": round(median([r["latency_ms"]["p50"] for r in ok]), 2),
            "p99_ms": round(median([r["latency_ms"]["p99"] for r in ok]), 2),
            "max_ms": round(max(r["latency_ms"]["max"] for r in ok), 2),
            "lost": sum(r["lost"] for r in ok),
            "duplicates": sum(r["duplicates"] for r in ok),
            "repeats": len(ok),
        }
    return {
        "scenario": "delivery",
        "fleet": fleet,
        "followers": followers,
        "posts": posts,
        "rate_per_s": rate,
        "repeats": repeats,
        "summary": summary,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--fleet", action="store_true", help="two processes sharing Redis")
    parser.add_argument("--only", nargs="*", choices=KINDS, default=list(KINDS))
    parser.add_argument("--out", type=Path, help="also write the whole result here (JSON)")
    args = parser.parse_args(argv)
    result = run(
        kinds=tuple(args.only),
        followers=args.followers,
        posts=args.posts,
        rate=args.rate,
        repeats=args.repeats,
        fleet=args.fleet,
    )
    if args.out:
        write_result(args.out.stem, result, args.out.parent)
    print(json.dumps(result["summary"], indent=2))
    with contextlib.suppress(KeyError):
        return 1 if any(v.get("lost") for v in result["summary"].values()) else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
