"""Resume storm: N sockets on `feed` (each a follower of one author) are cut at once (the
connections aborted, no close handshake), the author posts while they are away, and then
they all reconnect at the same moment and subscribe with `since` (their last offset and
epoch). Plaza embedded, on PostgreSQL.

- time until all are current: from the reconnect start until the last socket holds every
  post made before it (from its subscribe reply's `events` or live);
- gaps (a socket missing a post, also those posted during the storm) and duplicates
  (a post seen twice by a socket) must both be zero; every subscribe must say
  `recovered: true`.

    .venv/bin/python bench/resume.py --sockets 2000 --missed 5
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

from bench.common import ROOT, cpu_seconds, raise_nofile, write_result
from bench.delivery import _post
from bench.sockets import SocketFleet
from bench.targets import Target, plaza_embedded


async def measure(
    t: Target,
    missed: int,
    during: int,
    timeout: float,
    around: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
) -> dict[str, Any]:
    """`around` wraps the reconnect only (a profiler, in bench/profile.py)."""
    n = len(t.tokens)
    processes = max(2, min(6, -(-n // 1000)))
    async with SocketFleet("plaza", processes) as fleet, httpx.AsyncClient(timeout=60) as http:
        opened = await fleet.open(t.specs(), concurrency=100)
        if opened["opened"] != n:
            raise RuntimeError(f"{opened['opened']}/{n} sockets opened: {opened['errors']}")
        seq = 0
        before = [seq := seq + 1 for _ in range(3)]
        for s in before:
            await _post(http, t, s)
        await fleet.wait(before, timeout)
        await fleet.drop()
        await asyncio.sleep(0.5)  # the server has seen every connection go
        gap = [seq := seq + 1 for _ in range(missed)]
        for s in gap:
            await _post(http, t, s)
        with around():
            cpu0 = cpu_seconds(t.pids)
            resume = asyncio.create_task(fleet.resume())
            # More posts while the storm is on: the seam between history and live.
            live = [seq := seq + 1 for _ in range(during)]
            for s in live:
                await asyncio.sleep(0.2)
                await _post(http, t, s)
            reconnected = await resume
            current = await fleet.wait(before + gap, timeout)
            done = await fleet.wait(before + gap + live, timeout)
            cpu = cpu_seconds(t.pids) - cpu0
        per_socket, duplicates, _ = await fleet.arrivals()
        await fleet.close()
    everything = set(before + gap + live)
    gaps = sum(len(everything - a.keys()) for a in per_socket)
    return {
        "sockets": n,
        "missed_posts": missed,
        "posts_during_storm": during,
        "reconnected": reconnected["opened"],
        "reconnect_failures": reconnected["failed"],
        "reconnect_errors": reconnected["errors"],
        "all_current_s": round(current["all_current_at"] - reconnected["started"], 3)
        if current["short"] == 0
        else None,
        "sockets_not_current": current["short"],
        "gaps": gaps,
        "duplicates": duplicates,
        "sockets_short_at_end": done["short"],
        "server_cpu_s": round(cpu, 2),
    }


def run(
    *,
    sockets: int = 2000,
    missed: int = 5,
    during: int = 5,
    timeout: float = 60.0,
    gc_threshold: int | None = None,
) -> dict[str, Any]:
    """`gc_threshold`: the experiment of bench/gc_tuning (the server's gen-0 GC threshold)."""
    extra: dict[str, str] = {}
    if gc_threshold is not None:
        extra = {
            "PYTHONPATH": str(ROOT / "bench" / "gc_tuning"),
            "BENCH_GC_THRESHOLD": str(gc_threshold),
        }
    raise_nofile(sockets * 2 + 512)
    started = time.perf_counter()
    with plaza_embedded(sockets, extra_env=extra) as t:
        result = asyncio.run(measure(t, missed, during, timeout))
    result["scenario"] = "resume"
    result["server_gc_threshold"] = gc_threshold
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--missed", type=int, default=5, help="posts while they are away")
    parser.add_argument("--during", type=int, default=5, help="posts during the reconnect")
    parser.add_argument(
        "--gc-threshold", type=int, help="experiment: the server's gen-0 GC threshold"
    )
    parser.add_argument("--out", type=Path, help="also write the result here (JSON)")
    args = parser.parse_args(argv)
    result = run(
        sockets=args.sockets,
        missed=args.missed,
        during=args.during,
        gc_threshold=args.gc_threshold,
    )
    if args.out:
        write_result(args.out.stem, result, args.out.parent)
    print(json.dumps(result, indent=2))
    return 0 if result["gaps"] == 0 and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
