"""The contract every event log passes: the memory log and the Redis streams log alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from channels.eventlog import NEW, PENDING, Delivery, EpochLost, EventLog, LogEntry, partition_of
from channels.memory_log import MemoryEventLog
from channels.redis_client import connect
from channels.redis_log import RedisEventLog

GROUPS = ["feed", "notifications", "live"]
PARTITIONS = 4
# Short leases, so expiry is testable in well under a second.
LEASE_TTL_S = 0.4


@dataclass
class Log:
    log: EventLog
    epoch: str


async def _drop_keys(url: str, prefix: str) -> None:
    client = connect(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_log(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], EventLog]]:
    clients = []
    prefix = ""
    url = ""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")

    def make() -> EventLog:
        if request.param == "memory":
            return MemoryEventLog(PARTITIONS, GROUPS, lease_ttl_s=LEASE_TTL_S)
        client = connect(url)
        clients.append(client)
        return RedisEventLog(client, PARTITIONS, GROUPS, prefix=prefix, lease_ttl_s=LEASE_TTL_S)

    yield make
    for client in clients:
        await client.aclose()
    if url:
        await _drop_keys(url, prefix)


@pytest.fixture
async def el(make_log: Callable[[], EventLog]) -> Log:
    log = make_log()
    return Log(log, await log.epoch())


def entries(keys: list[int], start: int = 1) -> list[LogEntry]:
    return [LogEntry(start + i, key, b'{"n":%d}' % (start + i)) for i, key in enumerate(keys)]


async def read_all(
    log: EventLog, group: str, worker: str, mode: str = NEW, count: int = 100
) -> list[Delivery]:
    cursors = dict.fromkeys(range(log.partitions), mode)
    return await log.read(group, worker, cursors, count=count, block_s=0)


async def test_the_epoch_is_stable_and_guards_appends(el: Log) -> None:
    assert await el.log.epoch() == el.epoch
    with pytest.raises(EpochLost):
        await el.log.append(el.epoch + "x", entries([1]))
    assert await read_all(el.log, "feed", "w1") == []  # nothing was appended


async def test_a_keys_entries_share_a_partition_in_order(el: Log) -> None:
    keys = [7, 3, 7, 9, 7, 3]
    await el.log.append(el.epoch, entries(keys))
    got = await read_all(el.log, "feed", "w1")
    assert sorted(d.outbox_id for d in got) == [1, 2, 3, 4, 5, 6]
    for key in set(keys):
        ids = [d.outbox_id for d in got if d.partition == partition_of(key, PARTITIONS)]
        mine = [
            i + 1
            for i, k in enumerate(keys)
            if partition_of(k, PARTITIONS) == partition_of(key, PARTITIONS)
        ]
        assert ids == mine  # oldest first within the partition
    assert all(d.deliveries == 1 for d in got)
    assert got[0].event == b'{"n":%d}' % got[0].outbox_id


async def test_each_group_has_its_own_cursor_and_acknowledgements(el: Log) -> None:
    await el.log.append(el.epoch, entries([1, 2, 3]))
    feed = await read_all(el.log, "feed", "w1")
    for d in feed:
        await el.log.ack("feed", d.partition, [d.log_id])
    # Another group still sees everything, and the feed group nothing new or pending.
    assert len(await read_all(el.log, "live", "w1")) == 3
    assert await read_all(el.log, "feed", "w1") == []
    assert await read_all(el.log, "feed", "w1", PENDING) == []


async def test_unacknowledged_entries_come_again_counted(el: Log) -> None:
    await el.log.append(el.epoch, entries([5, 5, 5]))
    first = await read_all(el.log, "notifications", "w1")
    await el.log.ack("notifications", first[0].partition, [first[0].log_id])
    again = await read_all(el.log, "notifications", "w1", PENDING)
    assert [d.outbox_id for d in again] == [2, 3]
    assert [d.deliveries for d in again] == [2, 2]
    third = await read_all(el.log, "notifications", "w1", PENDING, count=1)
    assert [(d.outbox_id, d.deliveries) for d in third] == [(2, 3)]
    # New reads never hand out what is pending.
    assert await read_all(el.log, "notifications", "w1") == []


async def test_a_takeover_moves_a_dead_workers_entries_in_order(el: Log) -> None:
    await el.log.append(el.epoch, entries([4, 4, 4, 4]))
    partition = partition_of(4, PARTITIONS)
    held = await read_all(el.log, "live", "dead")
    assert len(held) == 4
    assert await read_all(el.log, "live", "heir", PENDING) == []  # not its own yet
    assert await el.log.take_over("live", partition, "heir") == 4
    got = await read_all(el.log, "live", "heir", PENDING)
    assert [d.outbox_id for d in got] == [1, 2, 3, 4]
    assert {d.deliveries for d in got} == {2}  # the dead worker's delivery counts
    assert await read_all(el.log, "live", "dead", PENDING) == []


async def test_a_read_waits_for_new_entries(el: Log) -> None:
    cursors = dict.fromkeys(range(PARTITIONS), NEW)
    waiting = asyncio.create_task(el.log.read("feed", "w1", cursors, count=10, block_s=3))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await el.log.append(el.epoch, entries([1]))
    got = await asyncio.wait_for(waiting, 3)
    assert [d.outbox_id for d in got] == [1]


async def test_only_what_every_group_acknowledged_is_complete_and_forgotten(el: Log) -> None:
    await el.log.append(el.epoch, entries([8, 8, 8]))
    partition = partition_of(8, PARTITIONS)
    assert await el.log.acknowledged(100) == []  # nobody has read anything yet
    for group in GROUPS:
        got = await read_all(el.log, group, "w1")
        done = got if group != "live" else got[:2]  # live still holds the last one
        for d in done:
            await el.log.ack(group, d.partition, [d.log_id])
    acked = await el.log.acknowledged(100)
    assert [(a.partition, a.outbox_id) for a in acked] == [(partition, 1), (partition, 2)]
    assert len(await el.log.acknowledged(1)) == 1  # the limit holds
    # Forgetting through the entry live still holds drops only what everyone acknowledged.
    held = next(d for d in await read_all(el.log, "live", "w1", PENDING) if d.outbox_id == 3)
    await el.log.forget({partition: held.log_id})
    assert await el.log.acknowledged(100) == []
    # What live still holds was not dropped: it is read again, then completes too.
    [kept] = await read_all(el.log, "live", "w1", PENDING)
    assert kept.outbox_id == 3
    await el.log.ack("live", kept.partition, [kept.log_id])
    assert [a.outbox_id for a in await el.log.acknowledged(100)] == [3]
    await el.log.forget({partition: kept.log_id})
    assert await el.log.acknowledged(100) == []
    await el.log.append(el.epoch, entries([8], start=4))
    for group in GROUPS:
        assert [d.outbox_id for d in await read_all(el.log, group, "w1")] == [4]


async def test_one_worker_gets_every_partition(el: Log) -> None:
    assert await el.log.assignment("w1") == set(range(PARTITIONS))
    assert await el.log.assignment("w1") == set(range(PARTITIONS))  # renewals keep them


async def test_two_workers_share_the_partitions_without_overlap(el: Log) -> None:
    one = await el.log.assignment("w1")
    assert len(one) == PARTITIONS
    await el.log.assignment("w2")  # joins: nothing is free yet
    # w1 sees two live workers and gives half back (releasing after its batches) ...
    one = await el.log.assignment("w1")
    assert len(one) == PARTITIONS // 2
    await el.log.release("w1", sorted(set(range(PARTITIONS)) - one))
    # ... which w2 then takes.
    two = await el.log.assignment("w2")
    assert one.isdisjoint(two) and len(two) == PARTITIONS // 2
    assert await el.log.assignment("w1") == one


async def test_a_dead_workers_leases_expire(make_log: Callable[[], EventLog]) -> None:
    log = make_log()
    await log.epoch()
    assert len(await log.assignment("dead")) == PARTITIONS
    assert await log.assignment("heir") == set()  # held by the dead one for now
    await asyncio.sleep(LEASE_TTL_S * 1.5)
    assert await log.assignment("heir") == set(range(PARTITIONS))


async def test_a_released_partition_is_free_at_once(el: Log) -> None:
    await el.log.assignment("w1")
    await el.log.release("w1", [0, 1])
    await el.log.release("w2", [2])  # not w2's: nothing happens
    assert await el.log.assignment("w2") == {0, 1}


async def test_a_worker_that_leaves_frees_its_share_at_once(el: Log) -> None:
    await el.log.assignment("stays")
    await el.log.assignment("leaves")
    stays = await el.log.assignment("stays")  # two live workers: it gives half back
    await el.log.release("stays", sorted(set(range(PARTITIONS)) - stays))
    assert len(await el.log.assignment("leaves")) == PARTITIONS // 2
    await el.log.leave("leaves")
    # One live worker again, and nothing held by the one that left.
    assert await el.log.assignment("stays") == set(range(PARTITIONS))


async def test_lag_counts_what_each_group_has_not_acknowledged(el: Log) -> None:
    assert await el.log.lag() == dict.fromkeys(GROUPS, 0)
    await el.log.append(el.epoch, entries([1, 2, 3]))
    assert await el.log.lag() == dict.fromkeys(GROUPS, 3)
    feed = await read_all(el.log, "feed", "w1")
    # Delivered is not done: pending entries still count.
    assert (await el.log.lag())["feed"] == 3
    await el.log.ack("feed", feed[0].partition, [feed[0].log_id])
    assert await el.log.lag() == {"feed": 2, "notifications": 3, "live": 3}
