"""The FeedStore contract: the SQL pull store and the Redis store (real PostgreSQL and
Redis) answer every user's home feed alike, through the real services and the feed
consumer; and a truth test that drives random follows, unfollows, blocks, unblocks,
posts and deletes and checks every page of every feed against the SQL pull."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as redis
from storage_helpers import make_account

from channels.redis_client import connect
from domain.clock import SystemClock
from domain.consumers import FeedConsumer
from domain.errors import DomainError
from domain.events import decode_event
from domain.ids import SnowflakeIds
from domain.models import Post
from domain.pagination import Page, PageRequest
from domain.ports import FeedStore
from domain.services.base import Context
from domain.services.feed import FeedService
from domain.services.posts import PostService
from domain.services.social import SocialService
from storage.factory import Storage, open_storage
from storage.feed import SqlFeedStore
from storage.redis_feed import FeedLimits, RedisFeedStore

USERS = 12


@dataclass
class FeedWorld:
    """The real services over one database, one feed store under test beside the SQL
    pull (the truth), and the feed consumer driven by hand: `drain()` hands it every
    event committed since the last drain, in commit order, as the event log would."""

    storage: Storage
    store: FeedStore
    client: redis.Redis | None
    prefix: str
    ctx: Context
    feed: FeedService
    truth: FeedService
    social: SocialService
    posts: PostService
    users: list[int] = field(default_factory=list)
    seen_seq: int = 0

    async def drain(self) -> None:
        rows = await self.storage.db.fetch(
            "SELECT seq, event FROM outbox WHERE seq > {} ORDER BY seq", self.seen_seq
        )
        if rows:
            self.seen_seq = int(rows[-1]["seq"])
            await FeedConsumer(self.store).handle_batch([decode_event(r["event"]) for r in rows])

    async def add_users(self, count: int) -> list[int]:
        for n in range(count):
            user_id = self.ctx.ids.next_id()
            await self.storage.store.users.add(make_account(user_id, f"user{n}_{user_id % 9999}"))
            await self.storage.store.users.touch(user_id, self.ctx.clock.now())
            self.users.append(user_id)
        return self.users[-count:]

    async def forget_redis(self) -> None:
        """Redis loses every key (a restart without persistence)."""
        assert self.client is not None
        keys = [k async for k in self.client.scan_iter(match=f"{self.prefix}*")]
        if keys:
            await self.client.delete(*keys)


async def all_pages(service: FeedService, user_id: int, limit: int) -> list[list[int]]:
    pages: list[list[int]] = []
    request = PageRequest(limit=limit)
    while True:
        page = await service.home(user_id, request)
        pages.append([p.id for p in page.items])
        if page.next_max_id is None:
            return pages
        request = PageRequest(limit=limit, max_id=int(page.next_max_id))


def shape(page: Page[Post]) -> tuple[list[int], int | None, int | None, bool]:
    return ([p.id for p in page.items], page.newest_cursor, page.oldest_cursor, page.full)


async def assert_same(world: FeedWorld, user_id: int, limit: int) -> None:
    got = await all_pages(world.feed, user_id, limit)
    want = await all_pages(world.truth, user_id, limit)
    assert got == want, f"user {user_id}"


StoreMaker = Callable[[Storage, redis.Redis | None, str], FeedStore]
MakeWorld = Callable[[StoreMaker], Awaitable[FeedWorld]]


def sql_store(storage: Storage, client: redis.Redis | None, prefix: str) -> FeedStore:
    return SqlFeedStore(storage.db)


def redis_store(
    max_items: int = 800, fanout_max_followers: int = 10_000
) -> Callable[[Storage, redis.Redis | None, str], FeedStore]:
    def make(storage: Storage, client: redis.Redis | None, prefix: str) -> FeedStore:
        assert client is not None
        limits = FeedLimits(
            max_items=max_items, fanout_max_followers=fanout_max_followers, ttl_s=3600
        )
        return RedisFeedStore(
            storage.db, client, prefix=prefix, limits=limits, now=SystemClock().now
        )

    return make


async def open_world(
    database_url: str, redis_url: str | None, prefix: str, maker: StoreMaker
) -> FeedWorld:
    storage = await open_storage(database_url, run_migrations=True)
    client = connect(redis_url) if redis_url is not None else None
    ctx = Context(store=storage.store, clock=SystemClock(), ids=SnowflakeIds(7))
    store = maker(storage, client, prefix)
    return FeedWorld(
        storage=storage,
        store=store,
        client=client,
        prefix=prefix,
        ctx=ctx,
        feed=FeedService(ctx, store),
        truth=FeedService(ctx, SqlFeedStore(storage.db)),
        social=SocialService(ctx),
        posts=PostService(ctx),
    )


async def close_world(world: FeedWorld) -> None:
    if world.client is not None:
        await world.forget_redis()
        await world.client.aclose()
    await world.storage.close()


@pytest.fixture
async def make_world(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[MakeWorld]:
    """A world on PostgreSQL with a Redis store made by the given maker."""
    opened: list[FeedWorld] = []

    async def make(maker: StoreMaker) -> FeedWorld:
        opened.append(await open_world(postgres_url, redis_url, redis_prefix, maker))
        return opened[-1]

    yield make
    for world in opened:
        await close_world(world)


STORES = [
    pytest.param(("sqlite", sql_store), id="sql-pull-sqlite"),
    pytest.param(("postgres", sql_store), id="sql-pull-postgres", marks=pytest.mark.postgres),
    pytest.param(
        ("postgres", redis_store()),
        id="redis-postgres",
        marks=[pytest.mark.postgres, pytest.mark.redis],
    ),
    # A small cap and a low hybrid threshold: the cached tail and read-time merges are in
    # play on every read.
    pytest.param(
        ("postgres", redis_store(max_items=3, fanout_max_followers=1)),
        id="redis-small-postgres",
        marks=[pytest.mark.postgres, pytest.mark.redis],
    ),
]


@pytest.fixture(params=STORES)
def world_spec(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, str | None, str, StoreMaker]:
    engine, maker = request.param
    url = (
        f"sqlite:///{tmp_path / 'plaza.db'}"
        if engine == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    if maker is sql_store:
        return url, None, "", maker
    return url, request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix"), maker


@pytest.fixture
async def world(world_spec: tuple[str, str | None, str, StoreMaker]) -> AsyncIterator[FeedWorld]:
    opened = await open_world(*world_spec)
    try:
        yield opened
    finally:
        await close_world(opened)


# --- the contract ---------------------------------------------------------------------------


async def test_feed_is_own_and_followees_posts_newest_first(world: FeedWorld) -> None:
    me, friend, other, stranger = await world.add_users(4)
    await world.social.follow(me, friend)
    await world.social.follow(me, other)
    expected: list[int] = []
    for author in (me, friend, stranger, other, friend, me, stranger, other):
        post, _ = await world.posts.create(author, f"by {author}")
        if author != stranger:
            expected.insert(0, post.id)
    await world.drain()
    assert (await all_pages(world.feed, me, 3)) == [
        expected[0:3],
        expected[3:6],
        expected[6:],
    ]
    assert [p.id for p in (await world.feed.home(stranger, PageRequest())).items] == [
        p for p in await world.storage.feed.page(stranger, PageRequest())
    ]


async def test_cursors_max_since_min_match_the_sql_pull(world: FeedWorld) -> None:
    me, *authors = await world.add_users(4)
    for author in authors:
        await world.social.follow(me, author)
    ids = []
    for n in range(14):
        post, _ = await world.posts.create(authors[n % 3], f"post {n}")
        ids.append(post.id)
    await world.drain()
    newest_first = sorted(ids, reverse=True)
    rng = random.Random(5)
    for _ in range(25):
        cursor = rng.choice(newest_first)
        other = rng.choice(newest_first)
        limit = rng.randint(1, 6)
        for request in (
            PageRequest(limit=limit, max_id=cursor),
            PageRequest(limit=limit, since_id=cursor),
            PageRequest(limit=limit, min_id=cursor),
            PageRequest(limit=limit, max_id=max(cursor, other), since_id=min(cursor, other)),
            PageRequest(limit=limit, max_id=max(cursor, other), min_id=min(cursor, other)),
        ):
            got = await world.feed.home(me, request)
            want = await world.truth.home(me, request)
            assert shape(got) == shape(want), request  # items, cursors (Link), fullness


async def test_the_actor_sees_a_follow_unfollow_block_and_delete_at_once(
    world: FeedWorld,
) -> None:
    """Read-your-writes: the feed reflects what the actor just did, before the worker has
    done anything about it."""
    me, alice, bob = await world.add_users(3)
    await world.social.follow(me, alice)
    mine, _ = await world.posts.create(me, "mine")
    a1, _ = await world.posts.create(alice, "a1")
    b1, _ = await world.posts.create(bob, "b1")
    await world.drain()
    assert await all_pages(world.feed, me, 10) == [[a1.id, mine.id]]

    await world.social.follow(me, bob)  # not drained
    assert await all_pages(world.feed, me, 10) == [[b1.id, a1.id, mine.id]]
    await world.drain()
    await world.social.unfollow(me, alice)  # not drained
    assert await all_pages(world.feed, me, 10) == [[b1.id, mine.id]]
    await world.social.block(me, bob)
    assert await all_pages(world.feed, me, 10) == [[mine.id]]
    await world.posts.delete(mine.id, me)
    assert await all_pages(world.feed, me, 10) == [[]]
    await world.drain()
    assert await all_pages(world.feed, me, 10) == [[]]


async def test_the_feed_scrolls_past_the_cached_tail_to_the_first_post(world: FeedWorld) -> None:
    me, alice = await world.add_users(2)
    await world.social.follow(me, alice)
    ids = [(await world.posts.create(alice, f"p{n}"))[0].id for n in range(11)]
    await world.drain()
    pages = await all_pages(world.feed, me, 2)
    assert [i for page in pages for i in page] == sorted(ids, reverse=True)


# --- the Redis store ------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
async def test_posts_are_fanned_out_into_sorted_sets_capped_and_scored_by_id(
    make_world: MakeWorld,
) -> None:
    world = await make_world(redis_store(max_items=4))
    assert world.client is not None
    me, alice = await world.add_users(2)
    await world.social.follow(me, alice)
    await world.feed.home(me, PageRequest())  # the feed exists from the first read on
    ids = [(await world.posts.create(alice, f"p{n}"))[0].id for n in range(6)]
    await world.drain()
    store = world.store
    assert isinstance(store, RedisFeedStore)
    meta_key, feed_key = store.keys(me)
    entries = cast(
        "list[tuple[bytes, float]]", await world.client.zrange(feed_key, 0, -1, withscores=True)
    )
    assert [int(m[:19]) for m, _ in entries] == ids[-4:]  # capped at the newest four
    assert {m.split(b":")[1] for m, _ in entries} == {str(alice).encode()}
    assert [score for _, score in entries] == [float(i) for i in ids[-4:]]
    meta = await world.client.hgetall(meta_key)
    assert int(meta[b"tail"]) == ids[1]  # the newest id dropped by the cap
    # The set was made by the first fan-out (the feed was empty when read): it took the
    # meta hash's expiry then, and kept it through the later ones.
    feed_ttl, meta_ttl = await world.client.pttl(feed_key), await world.client.pttl(meta_key)
    assert 0 < feed_ttl <= 3_600_000 and abs(feed_ttl - meta_ttl) < 60_000
    # A feed nobody reads is not kept: alice never read hers, so nothing was written.
    assert not await world.client.exists(store.keys(alice)[1])


@pytest.mark.postgres
@pytest.mark.redis
async def test_followers_away_longer_than_the_active_window_are_not_fanned_out(
    make_world: MakeWorld,
) -> None:
    from datetime import timedelta

    world = await make_world(redis_store())
    assert world.client is not None
    away, here, author = await world.add_users(3)
    for user in (away, here):
        await world.social.follow(user, author)
        await world.feed.home(user, PageRequest())
    await world.drain()
    await world.storage.db.execute(
        "UPDATE users SET last_active_at = {} WHERE id = {}",
        world.ctx.clock.now() - timedelta(days=8),
        away,
    )
    await world.posts.create(author, "hello")
    await world.drain()
    store = world.store
    assert isinstance(store, RedisFeedStore)
    assert await world.client.zcard(store.keys(here)[1]) == 1
    assert await world.client.zcard(store.keys(away)[1]) == 0


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_fan_out_reads_followers_page_by_page_and_writes_every_page(
    make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Followers are read and written FANOUT_BATCH at a time, the pages' writes in flight
    together: with pages of 2, seven followers (one of them away) take four pages, and
    every active one gets the post and loses it on delete."""
    from datetime import timedelta

    from storage import redis_feed

    monkeypatch.setattr(redis_feed, "FANOUT_BATCH", 2)
    world = await make_world(redis_store())
    assert world.client is not None
    author, *fans = await world.add_users(8)
    for fan in fans:
        await world.social.follow(fan, author)
        await world.feed.home(fan, PageRequest())
    await world.feed.home(author, PageRequest())
    await world.drain()
    away = fans[3]
    await world.storage.db.execute(
        "UPDATE users SET last_active_at = {} WHERE id = {}",
        world.ctx.clock.now() - timedelta(days=8),
        away,
    )
    post, _ = await world.posts.create(author, "to every page")
    await world.drain()
    store = world.store
    assert isinstance(store, RedisFeedStore)
    held = {user: await world.client.zcard(store.keys(user)[1]) for user in (author, *fans)}
    assert held == {user: int(user != away) for user in (author, *fans)}
    await world.posts.delete(post.id, author)
    await world.drain()
    assert [await world.client.zcard(store.keys(user)[1]) for user in (author, *fans)] == [0] * 8


@pytest.mark.postgres
@pytest.mark.redis
async def test_big_accounts_are_merged_at_read_time_in_order(
    make_world: MakeWorld,
) -> None:
    world = await make_world(redis_store(fanout_max_followers=2))
    assert world.client is not None
    me, small, big, fan1, fan2 = await world.add_users(5)
    for user in (me, fan1, fan2):
        await world.social.follow(user, big)
    await world.social.follow(me, small)
    await world.drain()
    await world.feed.home(me, PageRequest())
    ids = []
    for n in range(9):
        post, _ = await world.posts.create(big if n % 3 else small, f"p{n}")
        ids.append(post.id)
    await world.drain()
    store = world.store
    assert isinstance(store, RedisFeedStore)
    members = cast("list[bytes]", await world.client.zrange(store.keys(me)[1], 0, -1))
    cached = [int(m[:19]) for m in members]
    assert cached == ids[0::3]  # only the small account's posts were fanned out
    assert [i for page in await all_pages(world.feed, me, 2) for i in page] == sorted(
        ids, reverse=True
    )


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_missing_feed_is_rebuilt_once_however_many_reads_arrive(
    make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(redis_store())
    me, alice = await world.add_users(2)
    await world.social.follow(me, alice)
    for n in range(5):
        await world.posts.create(alice, f"p{n}")
    store = world.store
    assert isinstance(store, RedisFeedStore)
    built: list[bool] = []
    rebuild = store.rebuild

    async def counted(user_id: int) -> bool:
        done = await rebuild(user_id)
        built.append(done)
        return done

    monkeypatch.setattr(store, "rebuild", counted)
    want = await all_pages(world.truth, me, 20)
    results = await asyncio.gather(*(all_pages(world.feed, me, 20) for _ in range(12)))
    assert all(result == want for result in results)
    assert built.count(True) == 1  # one rebuild; the other readers were answered from SQL
    assert await all_pages(world.feed, me, 20) == want


@pytest.mark.postgres
async def test_feed_reads_fall_back_to_sql_when_redis_is_down(
    postgres_url: str, unused_tcp_port: int
) -> None:
    storage = await open_storage(postgres_url, run_migrations=True)
    client = connect(f"redis://127.0.0.1:{unused_tcp_port}/0")  # nothing listens there
    try:
        ctx = Context(store=storage.store, clock=SystemClock(), ids=SnowflakeIds(3))
        store = RedisFeedStore(
            storage.db, client, prefix="x:", limits=FeedLimits(), now=ctx.clock.now
        )
        me = ctx.ids.next_id()
        await storage.store.users.add(make_account(me, "lonely"))
        post, _ = await PostService(ctx).create(me, "still here")
        home = await FeedService(ctx, store).home(me, PageRequest())
        assert [p.id for p in home.items] == [post.id]
    finally:
        await client.aclose()
        await storage.close()


# --- the truth test -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
async def test_random_social_life_matches_the_sql_pull_on_every_page(
    make_world: MakeWorld,
) -> None:
    """A dozen users follow, unfollow, block, unblock, post and delete at random; one is
    followed by nearly everyone, above a low hybrid threshold, and feeds are capped at 6.
    Every user's feed, every page, equals the SQL pull, in order — also after Redis loses
    every key — and the actor of a relation change or a deletion sees it at once."""
    world = await make_world(redis_store(max_items=6, fanout_max_followers=4))
    users = await world.add_users(USERS)
    star = users[0]
    for user in users[1:9]:
        await world.social.follow(user, star)
    rng = random.Random(20261201)
    posts: list[tuple[int, int]] = []  # (post id, author)

    for step in range(260):
        actor, target = rng.sample(users, 2)
        roll = rng.random()
        if roll >= 0.40:
            await world.drain()  # what follows checks read-your-writes alone
        try:
            if roll < 0.40:
                author = star if rng.random() < 0.25 else actor
                post, _ = await world.posts.create(author, f"step {step}")
                posts.append((post.id, author))
                kind = "post"
            elif roll < 0.55:
                await world.social.follow(actor, target)
                kind = "relation"
            elif roll < 0.67:
                await world.social.unfollow(actor, target)
                kind = "relation"
            elif roll < 0.75:
                await world.social.block(actor, target)
                kind = "relation"
            elif roll < 0.82:
                await world.social.unblock(actor, target)
                kind = "relation"
            elif posts:
                post_id, author = posts.pop(rng.randrange(len(posts)))
                await world.posts.delete(post_id, author)
                actor, kind = author, "relation"
            else:
                continue
        except DomainError:
            continue
        if kind == "relation":
            await assert_same(world, actor, rng.randint(2, 5))  # before the worker ran
        if rng.random() < 0.6:
            await world.drain()
        if step % 40 == 39:
            await world.drain()
            for user in users:
                await assert_same(world, user, rng.randint(2, 5))
        if step == 150:
            await world.forget_redis()

    await world.drain()
    for user in users:
        await assert_same(world, user, 3)
    # The feeds were served from Redis, not from the fallback: they hold entries, and the
    # star's posts were merged at read time instead of fanned out.
    store, client = world.store, world.client
    assert isinstance(store, RedisFeedStore) and client is not None
    assert await client.sismember(f"{world.prefix}feed:unfanned", str(star))
    sizes = [await client.zcard(store.keys(user)[1]) for user in users]
    assert sum(1 for size in sizes if size > 0) >= USERS // 2
    await world.forget_redis()
    for user in users:
        await assert_same(world, user, 4)
