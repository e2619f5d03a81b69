"""The event log: committed outbox entries on their way to the consumer kinds.

    outbox (SQL) --relay--> EventLog (partitions) --one group per kind--> consumers

The log is partitioned by an event's ordering key (a post, a user): events of one key sit
in one partition, in relay order, and each partition is consumed by one worker at a time
(it holds the partition's lease), so every consumer kind applies them in commit order.
Each kind reads through its own consumer group: its own cursor, pending entries and
acknowledgements. The log has an epoch: when it loses its data (Redis restarted empty)
the epoch changes and the relay re-sends everything not yet done by every kind.

Two implementations pass one contract suite (tests/channels/test_channel_eventlog_contract.py):
`MemoryEventLog` (embedded, one process) and `RedisEventLog` (a fleet, Redis streams).
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import msgspec

__all__ = [
    "LEASE_RENEW_S",
    "LEASE_TTL_S",
    "NEW",
    "PARTITIONS",
    "PENDING",
    "Acknowledged",
    "Delivery",
    "EpochLost",
    "EventLog",
    "LogEntry",
    "partition_of",
    "rebalance",
]

# Partitions of the log. Fixed, not configurable: an ordering key's partition must never
# change while entries are in flight. 16 lets up to 16 workers share the consumption (one
# more would idle) and costs nothing when one worker owns them all.
PARTITIONS = 16

# Read cursors of `EventLog.read`: the worker's own delivered-but-unacknowledged entries
# (after a takeover or a failure), or entries never delivered to the group.
PENDING = "pending"
NEW = "new"


class LogEntry(msgspec.Struct, frozen=True):
    """What the relay appends: an outbox entry, routed by its ordering key."""

    outbox_id: int
    key: int
    event: bytes


class Delivery(msgspec.Struct, frozen=True):
    """An entry as a consumer group reads it."""

    partition: int
    # The entry's id in its partition (acknowledge with it).
    log_id: str
    outbox_id: int
    event: bytes
    # How many times the entry has been delivered to this group, this one included: a
    # takeover or a retry after a crash counts, so a poison event cannot dodge its limit
    # by killing workers.
    deliveries: int


# A worker holds a partition for this long past its last renewal (every LEASE_RENEW_S). A
# dead worker's partitions (and the entries it held) are taken over after at most this
# long: 10 s keeps live pushes from stalling long after a crash, while ten missed renewals
# in a row are needed to lose a lease, so a GC pause or a Redis blip of a few seconds never
# makes partitions flap between workers. Renewing every second also lets a worker that
# joins get its share within a second or two.
LEASE_TTL_S = 10.0
LEASE_RENEW_S = 1.0


def rebalance(
    partitions: int, mine: set[int], taken: set[int], live_workers: int
) -> tuple[list[int], list[int]]:
    """Which partitions a worker should release and which free ones it should try to take,
    to move towards an even share among `live_workers` (itself included). `taken` are the
    partitions other workers hold. Every worker runs this on its own; it converges because
    each only takes free partitions and gives back what is above its share."""
    share = -(-partitions // max(1, live_workers))  # ceil
    if len(mine) > share:
        return sorted(mine, reverse=True)[: len(mine) - share], []
    free = [p for p in range(partitions) if p not in mine and p not in taken]
    return [], free[: share - len(mine)]


class Acknowledged(msgspec.Struct, frozen=True):
    """An entry every consumer group has acknowledged."""

    partition: int
    log_id: str
    outbox_id: int


class EpochLost(Exception):
    """The log's epoch is not the one the caller appended under: it lost its data."""


def partition_of(key: int, partitions: int) -> int:
    """The partition of an ordering key. CRC32 of the decimal key: stable across processes
    and Python versions (hash() is salted per process)."""
    return zlib.crc32(str(key).encode()) % partitions


class EventLog(ABC):
    """A partitioned log with one consumer group per consumer kind."""

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.partitions = partitions

    # --- the relay's side -------------------------------------------------------------------

    @abstractmethod
    async def epoch(self) -> str:
        """The log's current epoch (a new log gets a new one, its groups created)."""

    @abstractmethod
    async def append(self, epoch: str, entries: Sequence[LogEntry]) -> None:
        """Append in order, each to its key's partition; raises EpochLost (appending
        nothing) when the log's epoch is no longer `epoch`."""

    @abstractmethod
    async def acknowledged(self, limit: int) -> list[Acknowledged]:
        """Entries every group has acknowledged (and not yet forgotten), oldest first per
        partition, at most `limit` per partition: the relay completes them in the outbox."""

    @abstractmethod
    async def forget(self, through: Mapping[int, str]) -> None:
        """Drop each partition's entries up to and including that log id (they are
        complete). Entries some group has not acknowledged are never dropped, however
        long the log grows."""

    async def maintain(self) -> None:
        """Housekeeping now and then (the relay calls it every minute or so)."""
        return None

    @abstractmethod
    async def lag(self) -> dict[str, int]:
        """Per group: entries of the log it has not acknowledged yet (delivered and
        pending, or never delivered), summed over the partitions. For operators (the
        consumer lag metric): a number that keeps growing means that kind falls behind."""

    # --- the consumers' side ----------------------------------------------------------------

    @abstractmethod
    async def assignment(self, worker: str) -> set[int]:
        """Renew every lease this worker holds, take free partitions up to a fair share of
        the live workers, and return the partitions it should consume. A partition it holds
        but should give up is not in the answer and stays leased to it until `release`
        (after its consumers finished their batch), so two owners never overlap. Call it
        every LEASE_RENEW_S."""

    @abstractmethod
    async def release(self, worker: str, partitions: Sequence[int]) -> None:
        """Hand partitions back (the worker stopped consuming them)."""

    @abstractmethod
    async def leave(self, worker: str) -> None:
        """The worker stops for good (SIGTERM): it no longer counts among the live workers,
        and every partition it holds is free at once, so the others take them without
        waiting for a lease to expire."""

    @abstractmethod
    async def take_over(self, group: str, partition: int, worker: str) -> int:
        """Make every entry pending in `group` on `partition` (delivered to a previous
        owner, never acknowledged) this worker's own; returns how many."""

    @abstractmethod
    async def read(
        self,
        group: str,
        worker: str,
        cursors: Mapping[int, str],
        *,
        count: int,
        block_s: float,
    ) -> list[Delivery]:
        """Up to `count` entries per partition of `cursors` (partition -> PENDING | NEW),
        oldest first per partition, waiting up to `block_s` for new ones."""

    @abstractmethod
    async def ack(self, group: str, partition: int, log_ids: Sequence[str]) -> None: ...
