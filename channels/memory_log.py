"""The embedded event log: partitions and consumer groups in this process's memory.

Only one node: what one process appends, only that process reads. It is lost with the
process, which is why each instance starts with a fresh random epoch: after a restart the
relay sees an epoch it never appended under and re-sends every outbox entry some consumer
kind had not finished, so a crash loses nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from channels.eventlog import (
    LEASE_TTL_S,
    NEW,
    Acknowledged,
    Delivery,
    EpochLost,
    EventLog,
    LogEntry,
    partition_of,
    rebalance,
)

__all__ = ["MemoryEventLog"]


@dataclass
class _Pending:
    worker: str
    deliveries: int


@dataclass
class _Cursor:
    """One group's state on one partition: where new reads start, what is unacknowledged."""

    next_id: int = 1
    pending: dict[int, _Pending] = field(default_factory=dict)


@dataclass
class _Partition:
    entries: dict[int, LogEntry] = field(default_factory=dict)
    last_id: int = 0
    groups: dict[str, _Cursor] = field(default_factory=dict)


class MemoryEventLog(EventLog):
    """`EventLog` in memory; `groups` are the consumer kinds (created with the log)."""

    def __init__(
        self,
        partitions: int,
        groups: Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        super().__init__(partitions)
        self._lease_ttl = lease_ttl_s
        self._epoch = secrets.token_hex(8)
        self._groups = tuple(groups)
        self._parts = [
            _Partition(groups={g: _Cursor() for g in self._groups}) for _ in range(partitions)
        ]
        self._clock = clock
        self._leases: dict[int, tuple[str, float]] = {}
        self._workers: dict[str, float] = {}
        # Per partition, the blocked reads waiting for an append there: an append wakes
        # only the readers of its own partitions, not every consumer task of every group
        # (with 3 groups x 8 partitions, a single wake-all made ~24 empty reads per event).
        self._waiting: list[set[asyncio.Future[None]]] = [set() for _ in range(partitions)]

    async def epoch(self) -> str:
        return self._epoch

    async def append(self, epoch: str, entries: Sequence[LogEntry]) -> None:
        if epoch != self._epoch:
            raise EpochLost(epoch)
        touched: set[int] = set()
        for entry in entries:
            p = partition_of(entry.key, self.partitions)
            part = self._parts[p]
            part.last_id += 1
            part.entries[part.last_id] = entry
            touched.add(p)
        for p in touched:
            for waiter in self._waiting[p]:
                if not waiter.done():
                    waiter.set_result(None)

    async def acknowledged(self, limit: int) -> list[Acknowledged]:
        found: list[Acknowledged] = []
        for p, part in enumerate(self._parts):
            floor = self._floor(part)
            ids = sorted(i for i in part.entries if i < floor)[:limit]
            found.extend(Acknowledged(p, str(i), part.entries[i].outbox_id) for i in ids)
        return found

    async def forget(self, through: Mapping[int, str]) -> None:
        for p, log_id in through.items():
            part = self._parts[p]
            last = min(int(log_id), self._floor(part) - 1)  # never what a group still needs
            for i in [i for i in part.entries if i <= last]:
                del part.entries[i]

    async def lag(self) -> dict[str, int]:
        return {
            group: sum(
                max(0, part.last_id - part.groups[group].next_id + 1)
                + len(part.groups[group].pending)
                for part in self._parts
            )
            for group in self._groups
        }

    @staticmethod
    def _floor(part: _Partition) -> int:
        """The first id some group still needs (pending, or not yet read)."""
        return min(min(c.pending, default=c.next_id) for c in part.groups.values())

    async def assignment(self, worker: str) -> set[int]:
        now = self._clock()
        self._workers[worker] = now
        for name, seen in list(self._workers.items()):
            if seen < now - self._lease_ttl:
                del self._workers[name]
        self._leases = {p: lease for p, lease in self._leases.items() if lease[1] > now}
        mine = {p for p, (owner, _) in self._leases.items() if owner == worker}
        taken = set(self._leases) - mine
        release, take = rebalance(self.partitions, mine, taken, len(self._workers))
        for p in [*mine, *take]:
            self._leases[p] = (worker, now + self._lease_ttl)
        return (mine - set(release)) | set(take)

    async def release(self, worker: str, partitions: Sequence[int]) -> None:
        for p in partitions:
            if self._leases.get(p, ("", 0.0))[0] == worker:
                del self._leases[p]

    async def leave(self, worker: str) -> None:
        self._workers.pop(worker, None)
        await self.release(worker, [p for p, (owner, _) in self._leases.items() if owner == worker])

    async def take_over(self, group: str, partition: int, worker: str) -> int:
        cursor = self._parts[partition].groups[group]
        for pending in cursor.pending.values():
            pending.worker = worker
        return len(cursor.pending)

    async def read(
        self,
        group: str,
        worker: str,
        cursors: Mapping[int, str],
        *,
        count: int,
        block_s: float,
    ) -> list[Delivery]:
        found = self._collect(group, worker, cursors, count)
        new = [p for p, mode in cursors.items() if mode == NEW]
        if not found and block_s > 0 and new:
            waiter = asyncio.get_running_loop().create_future()
            for p in new:
                self._waiting[p].add(waiter)
            try:
                async with asyncio.timeout(block_s):
                    await waiter
            except TimeoutError:
                return []
            finally:
                for p in new:
                    self._waiting[p].discard(waiter)
            found = self._collect(group, worker, cursors, count)
        return found

    def _collect(
        self, group: str, worker: str, cursors: Mapping[int, str], count: int
    ) -> list[Delivery]:
        found: list[Delivery] = []
        for p, mode in cursors.items():
            part = self._parts[p]
            cursor = part.groups[group]
            if mode == NEW:
                ids = list(range(cursor.next_id, min(part.last_id, cursor.next_id + count - 1) + 1))
                if ids:
                    cursor.next_id = ids[-1] + 1
                for i in ids:
                    cursor.pending[i] = _Pending(worker, 0)
            else:
                ids = sorted(i for i, pend in cursor.pending.items() if pend.worker == worker)
                ids = ids[:count]
            for i in ids:
                pending = cursor.pending[i]
                pending.deliveries += 1
                entry = part.entries[i]
                found.append(Delivery(p, str(i), entry.outbox_id, entry.event, pending.deliveries))
        return found

    async def ack(self, group: str, partition: int, log_ids: Sequence[str]) -> None:
        cursor = self._parts[partition].groups[group]
        for log_id in log_ids:
            cursor.pending.pop(int(log_id), None)
