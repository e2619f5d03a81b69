"""The fleet: event-path throughput with 1 and 2 workers, and post → socket latency across
two instances, on a fresh PostgreSQL database and Redis (under a key prefix of its own).

    .venv/bin/python bench/fleet.py throughput --events 20000
    .venv/bin/python bench/fleet.py latency --followers 1000 --posts 20 --rate 2

throughput: the outbox is seeded with N like events (real rows: users, posts, likes), W
`plaza worker` processes are started and left to share the partitions, then this process
relays (it holds the relay lock, so the workers only consume) while the workers are paused:
the relay rate is N / the time to append every entry to the log. Then the workers go on,
and the consumer rate is the steady rate at which entries complete (acknowledged by every
consumer kind: notifications, live, feed), from 10% to 90% of them. Each like makes a
notification row, two pushes on the author's notification channel and one on the post's
channel. --worker-cpu caps each worker (a cgroup), so the workers model machines of their
own and the figure shows the worker tier's scaling rather than this machine's limit.

latency: 2 `plaza serve` + 2 `plaza worker`; the followers' sockets are spread over both
instances, the author posts through one of them (see bench/ws_latency.py for what the
latency covers; here it crosses PostgreSQL, the Redis event log, a worker and Redis
pub/sub to the other instance too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench.common import (
    REDIS_URL,
    create_database,
    drop_database,
    drop_redis_prefix,
    proc_cpu_seconds,
    report,
)
from bench.ws_latency import measure
from domain.events import LikeCreated, encode_event
from domain.ids import SnowflakeIds
from tests.support.fleet import Fleet, base_env, running_fleet

# --- throughput -------------------------------------------------------------------------


async def _seed(url: str, events: int) -> None:
    """Users each with a post, and `events` likes spread over them (one per user and post)
    with their events in the outbox, as the API would have written them, minus the HTTP."""
    # Enough users that `events` distinct (post, liker) pairs exist: n (n - 1) > events.
    users = max(200, math.isqrt(events) * 2)
    ids = SnowflakeIds(node=1000)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        user_ids = [ids.next_id() for _ in range(users)]
        await conn.executemany(
            "INSERT INTO users (id, username, username_lower, email, email_lower, password_hash,"
            " display_name, bio, avatar_media_id, created_at, last_active_at, token_version)"
            " VALUES ($1, $2, $2, $3, $3, 'x', $2, '', NULL, $4, $4, 0)",
            [(u, f"u{n}", f"u{n}@example.com", now) for n, u in enumerate(user_ids)],
        )
        post_ids = [ids.next_id() for _ in range(users)]
        await conn.executemany(
            "INSERT INTO posts (id, author_id, content, media_ids, created_at, like_count,"
            " comment_count) VALUES ($1, $2, 'hello', '[]', $3, 0, 0)",
            [(p, u, now) for p, u in zip(post_ids, user_ids, strict=True)],
        )
        likes: list[tuple[Any, ...]] = []
        outbox: list[tuple[Any, ...]] = []
        pairs: set[tuple[int, int]] = set()
        n = 0
        while len(likes) < events:
            post_n, liker_n = n % users, (n // users + n) % users
            n += 1
            if post_n == liker_n or (post_n, liker_n) in pairs:
                continue
            pairs.add((post_n, liker_n))
            event_id = ids.next_id()
            likes.append((event_id, post_ids[post_n], user_ids[liker_n], now))
            event = LikeCreated(
                event_id=event_id,
                at=now,
                post_id=post_ids[post_n],
                post_author_id=user_ids[post_n],
                user_id=user_ids[liker_n],
                like_count=1,
            )
            outbox.append((event_id, encode_event(event), now, len(outbox) + 1))
        await conn.executemany(
            "INSERT INTO likes (id, post_id, user_id, created_at) VALUES ($1, $2, $3, $4)", likes
        )
        await conn.executemany(
            "INSERT INTO outbox (id, event, created_at, seq) VALUES ($1, $2, $3, $4)", outbox
        )
        await conn.execute("SELECT setval('outbox_seq', $1)", len(outbox) + 1)
    finally:
        await conn.close()


async def _wait_balanced(prefix: str, workers: int, timeout: float = 30.0) -> float:
    """Seconds until the workers hold every partition between them, evenly."""
    import redis.asyncio as redis

    from channels.eventlog import PARTITIONS

    client = redis.Redis.from_url(REDIS_URL)
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < timeout:
            owners = await client.mget([f"{prefix}log:lease:{p}" for p in range(PARTITIONS)])
            counts: dict[bytes | str, int] = {}
            for owner in owners:
                if owner is not None:
                    counts[owner] = counts.get(owner, 0) + 1
            share = PARTITIONS // workers
            if len(counts) == workers and all(n == share for n in counts.values()):
                return time.perf_counter() - start
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    raise RuntimeError("the workers did not balance the partitions")


CGROUP_CPU = Path("/sys/fs/cgroup/cpu")


class CpuCap:
    """A cgroup (v1 cpu controller) per worker capping it at `cores` of CPU: the workers
    then model machines of their own, smaller than this one, so the measured scaling is
    the worker tier's and not this 2-core machine's (PostgreSQL and Redis share it)."""

    def __init__(self, cores: float) -> None:
        self.cores = cores
        self._groups: list[Path] = []

    def apply(self, pid: int) -> None:
        group = CGROUP_CPU / f"plaza-bench-{pid}"
        group.mkdir()
        period = int((group / "cpu.cfs_period_us").read_text())
        (group / "cpu.cfs_quota_us").write_text(str(int(period * self.cores)))
        (group / "cgroup.procs").write_text(str(pid))
        self._groups.append(group)

    def remove(self) -> None:
        for group in self._groups:
            with contextlib.suppress(OSError):
                group.rmdir()


async def _throughput_once(
    workers: int, events: int, timeout: float, cpu_cap: float | None = None
) -> dict[str, Any]:
    from channels.eventlog import PARTITIONS
    from channels.redis_client import connect
    from channels.redis_log import RedisEventLog
    from channels.relay import OutboxRelay
    from domain.consumers import Kind
    from storage.factory import open_storage

    url = await create_database()
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    tmp = tempfile.TemporaryDirectory(prefix="plaza-bench-")
    fleet = Fleet(Path(tmp.name), base_env(url, REDIS_URL, prefix))
    storage = client = None
    cap = CpuCap(cpu_cap) if cpu_cap is not None else None
    try:
        fleet.migrate()
        await _seed(url, events)
        storage = await open_storage(url)
        client = connect(REDIS_URL)
        # This process is the relay: it takes the lock before any worker starts, so the
        # workers only consume.
        leadership = storage.relay_leadership()
        assert await leadership.hold()
        log = RedisEventLog(client, PARTITIONS, [str(k) for k in Kind], prefix=prefix)
        await log.epoch()  # the log and its groups exist before the workers read them
        started = [fleet.add_worker() for _ in range(workers)]
        if cap is not None:
            for worker in started:
                assert worker.proc is not None
                cap.apply(worker.proc.pid)
        balance_s = await _wait_balanced(prefix, workers)
        pids = [w.proc.pid for w in started if w.proc is not None]
        # The workers wait (SIGSTOP) while everything is relayed, so that the relay's rate
        # and the consumers' are each measured alone; the leases (10 s) outlive the pause.
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        relay = OutboxRelay(storage.outbox_reader, log, leadership)
        t_relay = time.perf_counter()
        while relay.relayed < events and await relay.relay_once():
            pass
        relay_s = time.perf_counter() - t_relay
        cpu0 = sum(proc_cpu_seconds(p) for p in pids)
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        relay.start()  # from now on it completes what the groups acknowledge
        t0 = time.perf_counter()
        p10 = p90 = done_s = None
        conn = await asyncpg.connect(url)
        try:
            while time.perf_counter() - t0 < timeout:
                now = time.perf_counter() - t0
                done = await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE completed_at IS NOT NULL"
                )
                if p10 is None and done >= events * 0.1:
                    p10 = now
                if p90 is None and done >= events * 0.9:
                    p90 = now
                if done >= events:
                    done_s = now
                    break
                await asyncio.sleep(0.02)
        finally:
            await conn.close()
            await relay.stop()
        cpu_s = sum(proc_cpu_seconds(p) for p in pids) - cpu0
    finally:
        fleet.stop()
        if cap is not None:
            cap.remove()
        if client is not None:
            await client.aclose()
        if storage is not None:
            await storage.close()
        tmp.cleanup()
        await drop_database(url)
        await drop_redis_prefix(prefix)
    steady = (
        events * 0.8 / (p90 - p10) if p10 is not None and p90 is not None and p90 > p10 else None
    )
    return {
        "workers": workers,
        "events": events,
        "balance_s": round(balance_s, 2),
        "relay_s": relay_s and round(relay_s, 2),
        "relay_events_per_s": relay_s and round(events / relay_s),
        "consume_all_s": done_s and round(done_s, 2),
        "consumer_events_per_s": steady and round(steady),
        "worker_cpu_us_per_event": round(cpu_s / events * 1e6, 1) if done_s else None,
        "worker_cpu_cap_cores": cpu_cap,
    }


def throughput(
    events: int, repeats: int, timeout: float, cpu_cap: float | None = None
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
    for _ in range(repeats):
        for workers in (1, 2):  # interleaved, so drift hits both alike
            runs[str(workers)].append(
                asyncio.run(_throughput_once(workers, events, timeout, cpu_cap))
            )

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    summary = {
        w: {
            "relay_events_per_s": median([r["relay_events_per_s"] or 0 for r in rs]),
            "consumer_events_per_s": median([r["consumer_events_per_s"] or 0 for r in rs]),
        }
        for w, rs in runs.items()
    }
    ratio = summary["2"]["consumer_events_per_s"] / max(1, summary["1"]["consumer_events_per_s"])
    return {"runs": runs, "median": summary, "two_over_one": round(ratio, 2)}


# --- latency ----------------------------------------------------------------------------


def latency(followers: int, posts: int, rate: float, time_limit: float) -> dict[str, Any]:
    url = asyncio.run(create_database())
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    try:
        with (
            tempfile.TemporaryDirectory(prefix="plaza-bench-") as tmp,
            running_fleet(Path(tmp), url, REDIS_URL, prefix=prefix) as fleet,
        ):
            a, b = fleet.servers
            pids = [s.proc.pid for s in fleet.servers if s.proc is not None]
            pids += [w.proc.pid for w in fleet.workers if w.proc is not None]

            async def bounded() -> dict[str, Any]:
                return await asyncio.wait_for(
                    measure(
                        a,
                        followers=followers,
                        posts=posts,
                        rate=rate,
                        warmup=3,
                        drain_timeout=30.0,
                        compression=False,
                        socket_servers=[a, b],
                        cpu_pids=pids,
                    ),
                    time_limit,
                )

            result = asyncio.run(bounded())
    finally:
        asyncio.run(drop_database(url))
        asyncio.run(drop_redis_prefix(prefix))
    result["topology"] = "2 plaza serve + 2 plaza worker, PostgreSQL + Redis"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--events", type=int, default=20_000)
    tp.add_argument("--repeats", type=int, default=3)
    tp.add_argument("--timeout", type=float, default=300.0)
    tp.add_argument(
        "--worker-cpu",
        type=float,
        help="cap each worker at this many cores (cgroup), e.g. 0.4: the worker tier's scaling",
    )
    lat = sub.add_parser("latency")
    lat.add_argument("--followers", type=int, default=1000)
    lat.add_argument("--posts", type=int, default=20)
    lat.add_argument("--rate", type=float, default=2.0)
    lat.add_argument("--time-limit", type=float, default=900.0)
    for scenario in (tp, lat):
        scenario.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args(argv)
    if args.scenario == "throughput":
        result = throughput(args.events, args.repeats, args.timeout, args.worker_cpu)
    else:
        result = latency(args.followers, args.posts, args.rate, args.time_limit)
    report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
