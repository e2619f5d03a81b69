"""The outbox relay: committed outbox entries into the event log, in commit order.

One relay at a time per database: each candidate asks the outbox for leadership (a
PostgreSQL advisory lock held on a connection of its own; SQLite has one process anyway)
and only the leader relays. A single leader keeps the log in the outbox's relay order,
which is what makes per-key order possible downstream; `FOR UPDATE SKIP LOCKED` claims
would let two relays append interleaved batches, so a deletion could overtake its post.
One batch is one SELECT, one script call and one UPDATE, so one relay keeps up with the
write rate (BENCHMARKS.md has the figures).

An entry is relayed under the log's current epoch and stays open in the outbox until every
consumer kind has acknowledged it in the log: the relay then completes it (one UPDATE per
batch) and drops it from the log. When the log's epoch changes (it lost its data) the open
entries relayed under the old one are simply pending again: nothing committed is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec

from channels.consumer_groups import TRANSIENT
from channels.eventlog import EpochLost, EventLog, LogEntry
from channels.tasks import cancel_and_wait
from domain.events import decode_event, ordering_key
from domain.models import OutboxEntry
from domain.ports import Leadership, OutboxReader

__all__ = ["BATCH_SIZE", "KEEP_COMPLETED", "OutboxRelay"]

log = logging.getLogger("plaza.relay")

# One batch is one SELECT, one append and one UPDATE; 500 makes a burst cheap (the append
# is one Redis round trip) while the first event of a batch waits on at most ~500 others.
BATCH_SIZE = 500
# Commits wake the relay at once (in-process, or PostgreSQL NOTIFY); the poll is only the
# safety net for a missed wake-up.
POLL_SECONDS = 1.0
# A candidate that is not the leader asks again this often: after a leader dies, relaying
# resumes within about this long.
LEADER_RETRY_SECONDS = 1.0
# How often the relay looks for entries every group has acknowledged, to complete them and
# drop them from the log: often enough that "open" in the outbox means in flight.
SWEEP_SECONDS = 0.25
# Entries completed per partition per sweep: one UPDATE and one trim each.
SWEEP_LIMIT = 1000
# Completed entries are kept a day for inspection, then purged; the log's housekeeping
# (stale consumer names) runs this often.
KEEP_COMPLETED = timedelta(days=1)
MAINTENANCE_SECONDS = 60.0


class OutboxRelay:
    def __init__(
        self,
        outbox: OutboxReader,
        log_: EventLog,
        leadership: Leadership,
        *,
        now: Callable[[], datetime] | None = None,
        poll_seconds: float = POLL_SECONDS,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._outbox = outbox
        self._log = log_
        self._leadership = leadership
        self._now = now or (lambda: datetime.now(UTC))
        self._poll = poll_seconds
        self._batch = batch_size
        self._wakeup = asyncio.Event()
        self._paused = False  # an outage was logged and has not ended yet
        self._task: asyncio.Task[None] | None = None
        self._last_maintenance = 0.0
        self._last_sweep = 0.0
        self.relayed = 0  # entries appended since start (metrics, tests)
        self.completed = 0  # entries completed since start

    def wake(self) -> None:
        """Called after a transaction that appended events commits."""
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        with contextlib.suppress(Exception):
            await self._leadership.release()

    async def run(self) -> None:
        while True:
            # Cleared before reading, so a commit that lands while we read wakes us again.
            self._wakeup.clear()
            try:
                if not await self._leadership.hold(on_notify=self.wake):
                    await asyncio.sleep(LEADER_RETRY_SECONDS)
                    continue
                moved = await self.relay_once()
                swept = await self._sweep_due()
                await self._maintain()
            except TRANSIENT as error:  # the database or Redis is away: once per outage
                if not self._paused:
                    self._paused = True
                    log.warning("outbox relay paused: %s; retrying until it is back", error)
                moved = swept = 0
                await asyncio.sleep(self._poll)
            except Exception:  # a bug must not kill the relay for good either
                log.exception("outbox relay failed; retrying")
                moved = swept = 0
                await asyncio.sleep(self._poll)
            else:
                if self._paused:
                    self._paused = False
                    log.warning("outbox relay resumed")
            if moved >= self._batch or swept >= SWEEP_LIMIT:
                continue  # more may be waiting
            # Less than a full batch: the outbox was drained as of the read, and a commit
            # since then has set the wake-up (cleared before the read) and ends the wait.
            # Idle: wake on a commit, or in time for the next sweep while entries are open.
            timeout = SWEEP_SECONDS if self.relayed > self.completed else self._poll
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    async def relay_once(self) -> int:
        """Relay one batch under the log's current epoch; returns how many entries moved.
        The caller must hold leadership (`run` does)."""
        epoch = await self._log.epoch()
        entries = await self._outbox.pending(epoch, self._batch)
        if not entries:
            return 0
        try:
            await self._log.append(epoch, [_routed(entry) for entry in entries])
        except EpochLost:
            log.warning("the event log lost its data; re-sending what is not done")
            return 0
        await self._outbox.mark_relayed([e.id for e in entries], epoch, self._now())
        self.relayed += len(entries)
        return len(entries)

    async def _sweep_due(self) -> int:
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_SECONDS:
            return 0
        self._last_sweep = now
        return await self.sweep()

    async def sweep(self) -> int:
        """Complete what every consumer group has acknowledged, then drop it from the log;
        returns how many entries were completed."""
        acked = await self._log.acknowledged(SWEEP_LIMIT)
        if not acked:
            return 0
        await self._outbox.complete([a.outbox_id for a in acked], self._now())
        through: dict[int, str] = {}
        for entry in acked:  # oldest first per partition: the last one is the highest
            through[entry.partition] = entry.log_id
        await self._log.forget(through)
        self.completed += len(acked)
        return len(acked)

    async def _maintain(self) -> None:
        now = time.monotonic()
        if now - self._last_maintenance < MAINTENANCE_SECONDS:
            return
        self._last_maintenance = now
        purged = await self._outbox.purge_completed(self._now() - KEEP_COMPLETED)
        await self._log.maintain()
        if purged:
            log.info("purged %d completed outbox entries", purged)


def _routed(entry: OutboxEntry) -> LogEntry:
    try:
        key = ordering_key(decode_event(entry.event))
    except msgspec.DecodeError:
        # Not an event this version knows: it still travels (partition 0's key), and every
        # consumer kind dead-letters it, where an operator can see it.
        key = 0
    return LogEntry(entry.id, key, entry.event)
