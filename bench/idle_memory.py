"""Server memory and CPU per idle WebSocket: `plaza serve` (embedded, on PostgreSQL)
before and after K idle sockets, each authenticated (Authorization header) and subscribed
to `feed` and `notifications`, opened from several load generator processes
(bench/wsclients.py).

RSS (VmRSS of the server) is read after a settle period before opening and after opening
them; the difference over K is the cost of one idle socket: the uvicorn connection and its
websockets protocol state (with permessage-deflate: the zlib streams), the session task,
its send queue and the channel memberships. Idle CPU is the server's utime + stime over an
idle window with every socket open (pings included once the window passes the 20 s ping
interval). A warm-up of 50 sockets opened and closed first keeps one-time costs out.

    .venv/bin/python bench/idle_memory.py --sockets 10000 [--no-compression]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    cpu_seconds,
    fd_count,
    hwm_kib,
    machine_info,
    raise_nofile,
    rss_kib,
    server_nofile,
)
from bench.sockets import SocketFleet
from bench.targets import Target, plaza_embedded

CHANNELS = ("feed", "notifications")
WARMUP = 50
# Descriptors beyond the sockets: the interpreter, the database pool, logs, slack.
FD_HEADROOM = 512


async def measure(
    t: Target, steps: list[int], settle: float, idle: float, compression: bool
) -> list[dict[str, Any]]:
    """Open sockets up to each count in `steps` (ascending) on one server, and measure at
    each: the RSS per socket is over all sockets open at that step."""
    pid = t.pids[0]
    specs = t.specs()
    warm, main = specs[:WARMUP], specs[WARMUP:]
    async with SocketFleet("plaza", 2, compression=compression) as warmers:
        await warmers.open(warm)
        await warmers.close()
    await asyncio.sleep(settle)
    rss_before, fds_before = rss_kib(pid), fd_count(pid)
    results: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as stack:
        fleets: list[SocketFleet] = []
        opened_total, failed, errors, open_s = 0, 0, [], 0.0
        extensions = "none"
        for target in steps:
            share = main[opened_total + failed : target]
            processes = max(2, min(6, -(-len(share) // 2500)))
            fleet = await stack.enter_async_context(
                SocketFleet("plaza", processes, compression=compression)
            )
            fleets.append(fleet)
            t0 = time.monotonic()
            opened = await fleet.open(share, concurrency=100)
            open_s += time.monotonic() - t0
            opened_total += opened["opened"]
            failed += opened["failed"]
            errors += opened["errors"]
            extensions = opened["extensions"]
            await asyncio.sleep(settle)
            cpu0, w0 = cpu_seconds([pid]), time.monotonic()
            await asyncio.sleep(idle)
            idle_cpu = cpu_seconds([pid]) - cpu0
            window = time.monotonic() - w0
            rss_after, fds_after, peak = rss_kib(pid), fd_count(pid), hwm_kib(pid)
            still = 0
            for f in fleets:
                still += sum(s["open"] for s in await f.all({"op": "stats"}))
            n = opened_total
            results.append(
                {
                    "sockets": target,
                    "sockets_opened": n,
                    "open_failures": failed,
                    "open_errors": errors[:3],
                    "sockets_open_after_idle": still,
                    "channels_per_socket": list(CHANNELS),
                    "compression": extensions,
                    "load_generators": sum(f.count for f in fleets),
                    "rss_before_kib": rss_before,
                    "rss_with_sockets_kib": rss_after,
                    "rss_peak_kib": peak,
                    "kib_per_idle_socket": round((rss_after - rss_before) / n, 1) if n else None,
                    "idle_window_s": round(window, 1),
                    "idle_cpu_pct": round(100 * idle_cpu / window, 2),
                    "idle_cpu_us_per_socket_per_s": round(idle_cpu / window / n * 1e6, 3)
                    if n
                    else None,
                    "fds_before": fds_before,
                    "fds_with_sockets": fds_after,
                    "open_s": round(open_s, 2),
                    "sockets_opened_per_s": round(n / open_s, 1) if open_s else None,
                    "server_nofile_soft": server_nofile(pid),
                }
            )
        for f in fleets:
            await f.close()
    return results


def run_steps(
    *, steps: list[int], settle: float = 3.0, idle: float = 10.0, compression: bool = True
) -> list[dict[str, Any]]:
    """One server, sockets opened up to each of `steps` in turn: a result per step."""
    steps = sorted(steps)
    if steps[0] < 1 or steps[-1] > 20_000:
        raise ValueError("1 ≤ sockets ≤ 20000, please")
    # One descriptor per socket in the server and one in a load generator; the server is
    # started after this and inherits the raised limit (so do the generators).
    nofile = raise_nofile(steps[-1] + WARMUP + FD_HEADROOM)
    if not nofile["enough"]:
        raise RuntimeError(f"RLIMIT_NOFILE hard limit too low for {steps[-1]}: {nofile}")
    started = time.perf_counter()
    # One socket per user, so the per-user socket limit never applies.
    with plaza_embedded(steps[-1] + WARMUP, channels=CHANNELS) as t:
        results = asyncio.run(measure(t, steps, settle, idle, compression))
    for result in results:
        result["nofile"] = nofile
        result["wall_s_all_steps"] = round(time.perf_counter() - started, 1)
    return results


def run(
    *, sockets: int = 1000, settle: float = 3.0, idle: float = 10.0, compression: bool = True
) -> dict[str, Any]:
    return run_steps(steps=[sockets], settle=settle, idle=idle, compression=compression)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--steps", type=int, nargs="*", help="several counts on one server")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before reading RSS")
    parser.add_argument("--idle", type=float, default=10.0, help="idle CPU window (s)")
    parser.add_argument("--no-compression", action="store_true", help="no permessage-deflate")
    parser.add_argument("--out", type=Path, help="also write the result here (JSON)")
    args = parser.parse_args(argv)
    results = run_steps(
        steps=args.steps or [args.sockets],
        settle=args.settle,
        idle=args.idle,
        compression=not args.no_compression,
    )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(
            json.dumps({"scenario": "idle", "steps": results, "machine": machine_info()}, indent=2)
            + "\n"
        )
    return 0 if all(r["sockets_open_after_idle"] == r["sockets"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
