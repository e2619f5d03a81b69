"""Post → socket latency: one author, N followers each holding a socket on `feed`.

The author creates M posts over REST at a fixed rate (open loop: each post is sent at its
scheduled time whether or not earlier ones have returned). Each post's content starts with
its sequence number; every socket records when that post's `post.created` push reaches it.
Latency of a (socket, post) pair = arrival - the moment the REST request started, so it
covers the HTTP request, validation, the SQLite commit, the outbox relay, the fan-out to N
feed channels, encoding, the send queues and the socket write, plus the client's receive.

    .venv/bin/python bench/ws_latency.py --followers 100 --posts 200 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from bench.common import (
    create_users,
    gather_limited,
    negotiated_extensions,
    open_socket,
    percentiles,
    plaza_server,
    proc_cpu_seconds,
    rss_kib,
)
from tests.support.live_server import LiveServer

PREFIX = "bench-"
WARMUP_PREFIX = "warmup-"
# A typical short post (~100 characters), so the frames are not unrealistically tiny.
FILLER = "the quick brown fox jumps over the lazy dog, then posts about it on plaza"


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Tally:
    """Deliveries over all sockets; `done` is set when every expected one has arrived."""

    expected: int
    received: int = 0
    duplicates: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self) -> None:
        self.received += 1
        if self.received >= self.expected:
            self.done.set()


@dataclass
class Receiver:
    """One follower socket: when each post's push arrived (perf_counter seconds)."""

    conn: ClientConnection
    arrivals: dict[int, float] = field(default_factory=dict)
    warmups: set[int] = field(default_factory=set)
    other_frames: int = 0
    close_code: int | None = None


async def read_feed(rx: Receiver, tally: Tally, warm: Tally) -> None:
    try:
        async for frame in rx.conn:
            arrived = time.perf_counter()  # before parsing: parse cost is not latency
            msg = json.loads(frame)
            if msg.get("push") != "event" or msg.get("channel") != "feed":
                rx.other_frames += 1
                continue
            event = msg["event"]
            if event["type"] != "post.created":
                rx.other_frames += 1
                continue
            content: str = event["data"]["content"]
            if content.startswith(WARMUP_PREFIX):
                rx.warmups.add(int(content[len(WARMUP_PREFIX) :].split(" ", 1)[0]))
                warm.count()
            elif content.startswith(PREFIX):
                seq = int(content[len(PREFIX) :].split(" ", 1)[0])
                if seq in rx.arrivals:
                    tally.duplicates += 1
                else:
                    rx.arrivals[seq] = arrived
                    tally.count()
    except websockets.ConnectionClosed:
        pass
    rx.close_code = rx.conn.close_code


async def measure(
    live: LiveServer,
    *,
    followers: int,
    posts: int,
    rate: float,
    warmup: int,
    drain_timeout: float,
    compression: bool,
    socket_servers: list[LiveServer] | None = None,
    cpu_pids: list[int] | None = None,
) -> dict[str, Any]:
    """Posts go to `live`; sockets are spread over `socket_servers` (default: `live`);
    server CPU is summed over `cpu_pids` (default: `live`'s process)."""
    assert live.proc is not None
    pids = cpu_pids or [live.proc.pid]
    spread = socket_servers or [live]
    phases: dict[str, float] = {}
    t = time.perf_counter()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        api = live.api
        author, *fans = await create_users(http, api, followers + 1, "lat")
        phases["register_login_s"] = time.perf_counter() - t

        t = time.perf_counter()

        async def follow(fan_token: str) -> None:
            r = await http.post(
                f"{api}/users/{author.id}/follow",
                headers={"Authorization": f"Bearer {fan_token}"},
            )
            r.raise_for_status()

        await gather_limited([partial(follow, f.token) for f in fans], 8)
        phases["follow_s"] = time.perf_counter() - t

        t = time.perf_counter()
        conns = await gather_limited(
            [
                partial(
                    open_socket,
                    spread[n % len(spread)].ws_url,
                    f.token,
                    ["feed"],
                    compression=compression,
                )
                for n, f in enumerate(fans)
            ],
            20,
        )
        phases["open_sockets_s"] = time.perf_counter() - t
        extensions = negotiated_extensions(conns[0]) if conns else "none"

        tally = Tally(expected=followers * posts)
        warm = Tally(expected=followers * warmup)
        receivers = [Receiver(c) for c in conns]
        readers = [asyncio.create_task(read_feed(rx, tally, warm)) for rx in receivers]
        try:
            author_auth = {"Authorization": f"Bearer {author.token}"}
            # Warm-up: first-use costs (imports, caches, connection pools) off the record.
            for i in range(warmup):
                r = await http.post(
                    f"{api}/posts",
                    json={"content": f"{WARMUP_PREFIX}{i} {FILLER}"},
                    headers=author_auth,
                )
                r.raise_for_status()
            if warmup:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(warm.done.wait(), drain_timeout)

            starts: dict[int, float] = {}
            rest_ms: list[float] = []
            errors: list[str] = []

            async def post(seq: int) -> None:
                starts[seq] = t0 = time.perf_counter()
                r = await http.post(
                    f"{api}/posts",
                    json={"content": f"{PREFIX}{seq} {FILLER}"},
                    headers=author_auth,
                )
                rest_ms.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:200]}")

            cpu0 = sum(proc_cpu_seconds(pid) for pid in pids)
            client0 = _own_cpu_seconds()
            run0 = time.perf_counter()
            senders: list[asyncio.Task[None]] = []
            for seq in range(posts):
                delay = run0 + seq / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                senders.append(asyncio.create_task(post(seq)))
            await asyncio.gather(*senders)
            send_s = time.perf_counter() - run0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tally.done.wait(), drain_timeout)
            run_s = time.perf_counter() - run0
            cpu_s = sum(proc_cpu_seconds(pid) for pid in pids) - cpu0
            client_cpu_s = _own_cpu_seconds() - client0
            server_rss = sum(rss_kib(pid) for pid in pids)
        finally:
            for c in conns:
                await c.close()
            await asyncio.gather(*readers, return_exceptions=True)

    latencies: list[float] = []
    spreads: list[float] = []
    per_post: dict[int, list[float]] = {}
    for rx in receivers:
        for seq, arrived in rx.arrivals.items():
            latencies.append((arrived - starts[seq]) * 1000)
            per_post.setdefault(seq, []).append(arrived)
    for arrivals in per_post.values():
        spreads.append((max(arrivals) - min(arrivals)) * 1000)
    first = [(min(a) - starts[s]) * 1000 for s, a in per_post.items()]
    last = [(max(a) - starts[s]) * 1000 for s, a in per_post.items()]
    expected = followers * posts
    return {
        "followers": followers,
        "sockets": len(conns),
        "posts": posts,
        "rate_per_s": rate,
        "warmup_posts": warmup,
        "compression": extensions,
        "deliveries_expected": expected,
        "deliveries_received": tally.received,
        "deliveries_pct": round(100 * tally.received / expected, 3) if expected else 100.0,
        "duplicates": tally.duplicates,
        "rest_errors": len(errors),
        "rest_error_samples": errors[:3],
        "latency_ms": percentiles(latencies),
        "first_socket_latency_ms": percentiles(first),
        "last_socket_latency_ms": percentiles(last),
        "fanout_spread_ms": percentiles(spreads),
        "rest_post_ms": percentiles(rest_ms),
        "send_phase_s": round(send_s, 2),
        "run_phase_s": round(run_s, 2),
        "server_cpu_pct_during_run": round(100 * cpu_s / run_s, 1) if run_s else None,
        "client_cpu_pct_during_run": round(100 * client_cpu_s / run_s, 1) if run_s else None,
        "server_rss_kib_after": server_rss,
        "setup": {k: round(v, 2) for k, v in phases.items()},
        "socket_closes_seen": sum(1 for rx in receivers if rx.close_code not in (None, 1000)),
    }


def run(
    *,
    followers: int = 100,
    posts: int = 200,
    rate: float = 20.0,
    warmup: int = 5,
    drain_timeout: float = 15.0,
    compression: bool = True,
    time_limit: float = 300.0,
) -> dict[str, Any]:
    if followers > 10_000 or posts > 100_000 or rate <= 0:
        raise ValueError("followers ≤ 10000, posts ≤ 100000 and rate > 0, please")
    started = time.perf_counter()
    with plaza_server() as live:

        async def bounded() -> dict[str, Any]:
            return await asyncio.wait_for(
                measure(
                    live,
                    followers=followers,
                    posts=posts,
                    rate=rate,
                    warmup=warmup,
                    drain_timeout=drain_timeout,
                    compression=compression,
                ),
                time_limit,
            )

        result = asyncio.run(bounded())
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", "-n", type=int, default=100, help="sockets (default 100)")
    parser.add_argument("--posts", "-m", type=int, default=200, help="posts (default 200)")
    parser.add_argument("--rate", type=float, default=20.0, help="posts per second (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="unrecorded posts first")
    parser.add_argument("--drain-timeout", type=float, default=15.0)
    parser.add_argument("--no-compression", action="store_true", help="no permessage-deflate")
    parser.add_argument("--time-limit", type=float, default=300.0, help="abort after (s)")
    args = parser.parse_args(argv)
    result = run(
        followers=args.followers,
        posts=args.posts,
        rate=args.rate,
        warmup=args.warmup,
        drain_timeout=args.drain_timeout,
        compression=not args.no_compression,
        time_limit=args.time_limit,
    )
    print(json.dumps(result, indent=2))
    return 0 if result["deliveries_received"] == result["deliveries_expected"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
