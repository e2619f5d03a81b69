"""The event path for real: outbox (SQLite and PostgreSQL) → relay → event log (memory and
Redis streams) → one consumer group per kind, with failures, poison events, dead letters,
purging, a log that loses its data and a worker that dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels import consumer_groups
from channels.eventlog import EventLog
from channels.memory_log import MemoryEventLog
from channels.redis_client import connect
from channels.redis_log import RedisEventLog
from channels.relay import KEEP_COMPLETED
from channels.workers import EventWorker
from domain.consumers import Consumer, Kind
from domain.events import DomainEvent, LikeCreated, PostCreated, PostDeleted
from storage.factory import Storage, open_storage

PARTITIONS = 4
# Leases of a second, renewed five times a second (production's ratio, 50x faster), so a
# dead worker's partitions are taken over in about a second.
LEASE_TTL_S = 1.0
RENEW_S = 0.2
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Recorder:
    """A consumer kind that records what it handled and fails on demand."""

    kind: Kind
    handled: list[int] = field(default_factory=list)
    fail_times: dict[int, int] = field(default_factory=dict)  # event id -> failures left
    attempts: dict[int, int] = field(default_factory=dict)

    async def handle(self, event: DomainEvent) -> None:
        self.attempts[event.event_id] = self.attempts.get(event.event_id, 0) + 1
        left = self.fail_times.get(event.event_id, 0)
        if left:
            self.fail_times[event.event_id] = left - 1
            raise RuntimeError(f"{self.kind} cannot handle {event.event_id} yet")
        if event.event_id not in self.handled:  # idempotent, as real consumers are
            self.handled.append(event.event_id)

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            await self.handle(event)


@dataclass
class Path_:
    storage: Storage
    make_log: Callable[[], EventLog]
    recorders: dict[Kind, Recorder]
    workers: list[EventWorker] = field(default_factory=list)

    def worker(self, name: str, consumers: Mapping[Kind, Consumer] | None = None) -> EventWorker:
        worker = EventWorker(
            self.make_log(),
            self.storage.outbox_reader,
            consumers or self.recorders,
            name,
            leadership=self.storage.relay_leadership(),
            renew_s=RENEW_S,
        )
        self.workers.append(worker)
        self.storage.store.add_outbox_listener(worker.wake)
        return worker

    async def write(self, *events: DomainEvent) -> None:
        async with self.storage.store.transaction():
            await self.storage.store.outbox.append(list(events))

    async def settled(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.storage.outbox_reader.open_count():
            if time.monotonic() > deadline:
                raise AssertionError("the outbox did not drain")
            await asyncio.sleep(0.02)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plaza.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def path(
    request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Path_]:
    # Retries back off in milliseconds here: the policy is the same, the test is fast.
    monkeypatch.setattr(consumer_groups, "backoff", lambda attempt: 0.01)
    storage = await open_storage(database_url, run_migrations=True)
    clients = []
    prefix = request.getfixturevalue("redis_prefix") if request.param == "redis" else ""
    shared = MemoryEventLog(PARTITIONS, [str(k) for k in Kind], lease_ttl_s=LEASE_TTL_S)

    def make_log() -> EventLog:
        if request.param == "memory":
            return shared  # one process: every worker of the test shares the one log
        client = connect(request.getfixturevalue("redis_url"))
        clients.append(client)
        return RedisEventLog(
            client, PARTITIONS, [str(k) for k in Kind], prefix=prefix, lease_ttl_s=LEASE_TTL_S
        )

    p = Path_(storage, make_log, {kind: Recorder(kind) for kind in Kind})
    try:
        yield p
    finally:
        for worker in p.workers:
            await worker.stop(grace_s=1)
        for client in clients:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
        await storage.close()


def post(n: int, post_id: int = 1) -> PostCreated:
    return PostCreated(event_id=n, at=T0, post_id=post_id, author_id=9)


def like(n: int, post_id: int, count: int) -> LikeCreated:
    return LikeCreated(
        event_id=n, at=T0, post_id=post_id, post_author_id=9, user_id=n, like_count=count
    )


async def test_every_kind_gets_every_event_once_in_commit_order_per_key(path: Path_) -> None:
    worker = path.worker("w1")
    await worker.start()
    # Ids deliberately out of commit order: order is the outbox's, not the ids'.
    await path.write(post(60, post_id=2))  # author 9's post...
    for n in (50, 10, 40, 20, 30):
        await path.write(like(n, post_id=n % 3, count=n))
    await path.write(PostDeleted(event_id=5, at=T0, post_id=2, author_id=9))  # ...deleted
    await path.settled()
    for recorder in path.recorders.values():
        assert sorted(recorder.handled) == [5, 10, 20, 30, 40, 50, 60]
        for key in (0, 1, 2):  # the likes of each post in commit order
            mine = [n for n in recorder.handled if n in (50, 10, 40, 20, 30) and n % 3 == key]
            assert mine == [n for n in (50, 10, 40, 20, 30) if n % 3 == key]
        # An author's post and its deletion, in commit order though the ids say otherwise.
        assert recorder.handled.index(60) < recorder.handled.index(5)


async def test_a_failing_event_is_retried_in_place_and_the_other_kinds_are_not_rerun(
    path: Path_,
) -> None:
    live = path.recorders[Kind.LIVE]
    live.fail_times[2] = 2  # fails twice, then works
    worker = path.worker("w1")
    await worker.start()
    await path.write(like(1, 7, 1), like(2, 7, 2), like(3, 7, 3), like(4, 7, 2))
    await path.settled()
    assert live.handled == [1, 2, 3, 4]  # the later events of post 7 waited for it
    assert live.attempts[2] == 3
    for kind in (Kind.FEED, Kind.NOTIFICATIONS):
        assert path.recorders[kind].handled == [1, 2, 3, 4]
        assert path.recorders[kind].attempts == {1: 1, 2: 1, 3: 1, 4: 1}
    assert await path.storage.outbox_reader.dead_letters() == []


async def test_a_poison_event_becomes_a_dead_letter_and_the_rest_flow_on(path: Path_) -> None:
    notifications = path.recorders[Kind.NOTIFICATIONS]
    notifications.fail_times[2] = 1000
    worker = path.worker("w1")
    await worker.start()
    await path.write(like(1, 5, 1), like(2, 5, 2), like(3, 5, 3))
    await path.settled()
    assert notifications.handled == [1, 3]
    assert notifications.attempts[2] == consumer_groups.MAX_ATTEMPTS
    letters = await path.storage.outbox_reader.dead_letters()
    assert [(d.outbox_id, d.kind, d.attempts) for d in letters] == [
        (2, "notifications", consumer_groups.MAX_ATTEMPTS)
    ]
    assert "cannot handle 2" in letters[0].error
    # The operator fixes the cause and replays: the kind that gave up handles it now.
    notifications.fail_times.clear()
    assert await path.storage.outbox_reader.replay(2, "notifications")
    worker.wake()
    await path.settled()
    assert notifications.handled == [1, 3, 2]
    assert await path.storage.outbox_reader.dead_letters() == []


async def test_an_undecodable_entry_is_a_dead_letter_for_every_kind(path: Path_) -> None:
    async with path.storage.store.transaction():
        await path.storage.db.execute(
            "INSERT INTO outbox (id, event, created_at, seq) VALUES ({}, {}, {}, {})",
            77,
            b'{"type":"from.the.future"}',
            T0,
            10**9,
        )
    worker = path.worker("w1")
    await worker.start()
    await path.write(post(78, 3))
    await path.settled()
    letters = await path.storage.outbox_reader.dead_letters()
    assert sorted(d.kind for d in letters if d.outbox_id == 77) == sorted(map(str, Kind))
    assert all(r.handled == [78] for r in path.recorders.values())


async def test_completed_entries_are_purged_after_the_window(path: Path_) -> None:
    worker = path.worker("w1")
    await worker.start()
    await path.write(post(1), post(2))
    await path.settled()
    outbox = path.storage.outbox_reader
    now = datetime.now(UTC)
    assert await outbox.purge_completed(now - KEEP_COMPLETED) == 0  # a day not yet past
    assert await outbox.purge_completed(now + timedelta(seconds=1)) == 2


@dataclass
class Hanging:
    """A consumer kind in a worker that is about to die: it takes events and never
    finishes them."""

    started: list[int] = field(default_factory=list)

    async def handle(self, event: DomainEvent) -> None:
        self.started.append(event.event_id)
        await asyncio.Event().wait()

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        await self.handle(events[0])


async def test_two_workers_share_the_work_and_a_dead_ones_entries_are_taken_over(
    path: Path_,
) -> None:
    hanging = {kind: Hanging() for kind in Kind}
    doomed = path.worker("doomed", hanging)
    heir = path.worker("heir")
    await doomed.start()
    await doomed.balance()
    await heir.start()
    # The two converge on half the partitions each (the doomed one gives back half once
    # its consumers of those have finished their current read).
    deadline = time.monotonic() + 10
    while not (doomed.partitions and heir.partitions):
        assert time.monotonic() < deadline, "the workers did not share the partitions"
        await asyncio.sleep(0.05)
    assert doomed.partitions.isdisjoint(heir.partitions)
    await path.write(*(post(n, post_id=n) for n in range(1, 61)))
    # Wait until the doomed worker holds some events in hand, then kill it outright: no
    # acknowledgement, no release (its leases must expire).
    deadline = time.monotonic() + 10
    while not all(h.started for h in hanging.values()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert doomed._task is not None
    doomed._task.cancel()
    for group in doomed.groups:
        for task in list(group._tasks.values()):
            task.cancel()
    if doomed.relay is not None:
        await doomed.relay.stop()
    path.workers.remove(doomed)
    await path.settled(timeout=30)
    for kind, recorder in path.recorders.items():
        # Everything reached the heir, including what the dead worker had in hand.
        assert set(hanging[kind].started) <= set(recorder.handled)
        assert sorted(set(recorder.handled)) == list(range(1, 61))
    assert heir.partitions == set(range(PARTITIONS))
