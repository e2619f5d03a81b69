"""The home feed in Redis: fan-out time and rate, and feed reads from the Redis store
against the SQL pull on the same data, on a fresh PostgreSQL database and Redis (under a
key prefix of its own).

    .venv/bin/python bench/feed.py fanout --followers 10000 --posts 20
    .venv/bin/python bench/feed.py read --readers 200 --followees 100 --posts 20000

fanout: one author with N followers, all active, all with a feed in Redis (built by the
store's own rebuild, as their first read would). Each post is written to SQL, then the
feed consumer's work is timed: `RedisFeedStore.post_created` (the follower count, the
pages of active followers and a script call per page) until it returns, when every
follower's sorted set holds the post (checked after each post). Inserts/s is followers /
that time. The database is ANALYZEd after seeding, as autovacuum would have it.

read: R readers each follow F of the authors, who hold P posts in all. The same feed
service (hydration, block and follow filtering, full pages) reads page one (limit 20) of a
random reader's feed from C concurrent tasks for D seconds, once with the Redis store
(feeds built first) and once with the SQL pull: requests/s and latency percentiles, in one
run, so the ratio is like for like. The load runs in this process, which shares the two
cores with PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import redis.asyncio as redis

from bench.common import REDIS_URL, create_database, drop_database, drop_redis_prefix, report
from bench.seed import add_follows, add_posts, add_users
from channels.redis_client import connect
from domain.clock import SystemClock
from domain.ids import SnowflakeIds
from domain.pagination import PageRequest
from domain.ports import FeedStore
from domain.services.base import Context
from domain.services.feed import FeedService
from storage.factory import Storage, open_storage
from storage.redis_feed import FeedLimits, RedisFeedStore


class Bench:
    def __init__(self, url: str, storage: Storage, client: redis.Redis, prefix: str) -> None:
        self.url, self.storage, self.client, self.prefix = url, storage, client, prefix
        self.ids = SnowflakeIds(node=1001)
        self.now = datetime.now(UTC)
        self.store = RedisFeedStore(
            storage.db, client, prefix=prefix, limits=FeedLimits(), now=SystemClock().now
        )

    async def build_feeds(self, users: list[int], concurrency: int = 16) -> float:
        queue = list(users)
        start = time.perf_counter()

        async def builder() -> None:
            while queue:
                await self.store.rebuild(queue.pop())

        await asyncio.gather(*(builder() for _ in range(concurrency)))
        return time.perf_counter() - start


async def fanout(followers: int, posts: int) -> dict[str, Any]:
    url = await create_database()
    prefix = f"plaza-bench-{uuid.uuid4().hex[:8]}:"
    storage = await open_storage(url, run_migrations=True, pool_max_size=20)
    client = connect(REDIS_URL)
    try:
        b = Bench(url, storage, client, prefix)
        author = b.ids.next_id()
        fans = [b.ids.next_id() for _ in range(followers)]
        conn = await asyncpg.connect(url)
        try:
            await add_users(conn, [author, *fans], b.now)
            await add_follows(conn, [(b.ids.next_id(), f, author) for f in fans], b.now)
            # Statistics, as autovacuum would have them on a live database: without them
            # the planner guesses 50 followers and scans and sorts every page.
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        build_s = await b.build_feeds(fans)
        times: list[float] = []
        for _ in range(posts):
            post_id = b.ids.next_id()
            conn = await asyncpg.connect(url)
            try:
                await add_posts(conn, [(post_id, author)], b.now)
            finally:
                await conn.close()
            start = time.perf_counter()
            await b.store.post_created(post_id, author)
            times.append(time.perf_counter() - start)
            # Every follower's feed holds it (checked outside the timing).
            async with client.pipeline(transaction=False) as pipe:
                for fan in fans:
                    pipe.zscore(b.store.keys(fan)[1], f"{post_id:019d}:{author}")
                scores = await pipe.execute()
            missing = sum(1 for s in scores if s is None)
            if missing:
                raise AssertionError(f"{missing} followers lack post {post_id}")
        times.sort()
        return {
            "scenario": "feed-fanout",
            "followers": followers,
            "posts": posts,
            "feeds_build_s": round(build_s, 2),
            "fanout_ms": {
                "p50": round(statistics.median(times) * 1000, 1),
                "min": round(times[0] * 1000, 1),
                "max": round(times[-1] * 1000, 1),
            },
            "inserts_per_s": round(followers / statistics.median(times)),
            "every_follower_checked": True,
        }
    finally:
        await client.aclose()
        await drop_redis_prefix(prefix)
        await storage.close()
        await drop_database(url)


async def _load(
    service: FeedService, readers: list[int], concurrency: int, seconds: float
) -> dict[str, Any]:
    rng = random.Random(7)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    page = PageRequest(limit=20)

    async def client() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            result = await service.home(rng.choice(readers), page)
            latencies.append(time.perf_counter() - start)
            if len(result.items) != 20:
                raise AssertionError("a short first page")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
    }


async def read(
    readers: int, followees: int, authors: int, posts: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    url = await create_database()
    prefix = f"plaza-bench-{uuid.uuid4().hex[:8]}:"
    storage = await open_storage(url, run_migrations=True, pool_max_size=concurrency)
    client = connect(REDIS_URL, max_connections=concurrency * 2)
    try:
        b = Bench(url, storage, client, prefix)
        author_ids = [b.ids.next_id() for _ in range(authors)]
        reader_ids = [b.ids.next_id() for _ in range(readers)]
        rng = random.Random(11)
        pairs = [
            (b.ids.next_id(), r, a) for r in reader_ids for a in rng.sample(author_ids, followees)
        ]
        post_rows = [(b.ids.next_id(), author_ids[n % authors]) for n in range(posts)]
        conn = await asyncpg.connect(url)
        try:
            await add_users(conn, author_ids + reader_ids, b.now)
            await add_follows(conn, pairs, b.now)
            await add_posts(conn, post_rows, b.now)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        build_s = await b.build_feeds(reader_ids)
        ctx = Context(store=storage.store, clock=SystemClock(), ids=b.ids)
        stores: dict[str, FeedStore] = {"redis": b.store, "sql": storage.feed}
        results: dict[str, Any] = {}
        for name, store in stores.items():
            service = FeedService(ctx, store)
            await _load(service, reader_ids, concurrency, 2.0)  # warm-up
            results[name] = await _load(service, reader_ids, concurrency, seconds)
        return {
            "scenario": "feed-read",
            "readers": readers,
            "followees_each": followees,
            "authors": authors,
            "posts": posts,
            "concurrency": concurrency,
            "seconds": seconds,
            "feeds_build_s": round(build_s, 2),
            "redis": results["redis"],
            "sql": results["sql"],
            "redis_over_sql_rps": round(
                results["redis"]["requests_per_s"] / results["sql"]["requests_per_s"], 2
            ),
        }
    finally:
        await client.aclose()
        await drop_redis_prefix(prefix)
        await storage.close()
        await drop_database(url)


def run_fanout(followers: int, posts: int) -> dict[str, Any]:
    """The fan-out scenario, for bench/run_all.py."""
    return asyncio.run(fanout(followers, posts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    fo = sub.add_parser("fanout")
    fo.add_argument("--followers", type=int, default=10_000)
    fo.add_argument("--posts", type=int, default=20)
    rd = sub.add_parser("read")
    rd.add_argument("--readers", type=int, default=200)
    rd.add_argument("--followees", type=int, default=100)
    rd.add_argument("--authors", type=int, default=200)
    rd.add_argument("--posts", type=int, default=20_000)
    rd.add_argument("--concurrency", type=int, default=32)
    rd.add_argument("--seconds", type=float, default=15.0)
    for scenario in (fo, rd):
        scenario.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args(argv)
    if args.scenario == "fanout":
        result = asyncio.run(fanout(args.followers, args.posts))
    else:
        result = asyncio.run(
            read(
                args.readers,
                args.followees,
                args.authors,
                args.posts,
                args.concurrency,
                args.seconds,
            )
        )
    report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
