"""One consumer kind in one worker: its consumer group's share of the event log.

For each partition the worker owns, one task reads the group's entries in order, hands them
to the kind's consumer a batch at a time, and only then acknowledges them in the log
(acknowledge after the side effects: a crash in between re-delivers, and the effects are
idempotent). The relay completes an outbox entry once every group has acknowledged it.
A failing event is retried with backoff in place, holding its partition back so later
events of the same key never overtake it; after MAX_ATTEMPTS deliveries it becomes a dead
letter and the rest flow on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import msgspec

from channels.eventlog import NEW, PENDING, Delivery, EventLog
from channels.tasks import cancel_and_wait
from domain.consumers import Consumer, Kind
from domain.errors import InsufficientStorage, Unavailable
from domain.events import DomainEvent, decode_event
from domain.models import DeadLetter
from domain.ports import OutboxReader

__all__ = ["MAX_ATTEMPTS", "ConsumerGroup"]

log = logging.getLogger("plaza.consumers")

# Five deliveries ride out a transient fault (a lock timeout, a reconnect: the backoff below
# spans ~3 s) without letting one poison event hold its partition for long.
MAX_ATTEMPTS = 5
# Entries per read: enough to amortise the outbox UPDATE and the acknowledgement over a
# burst, few enough that a handover finishes its batch quickly.
READ_COUNT = 100
# How long a read waits for new entries; it also bounds how soon a stop request is seen.
BLOCK_S = 1.0
# After a failed read or acknowledgement (Redis or the database away), wait before trying
# again; the entries stay pending and are read again.
FAILURE_PAUSE_S = 1.0


def backoff(attempt: int) -> float:
    """Seconds before retry `attempt + 1`: 0.2, 0.4, 0.8, 1.6 s, then 3.2 s and 5 s while a
    dependency is down."""
    return float(min(0.1 * 2**attempt, 5.0))


# Failures of a dependency, not of the event: Redis or the database away (the backends
# raise Unavailable; a connection that breaks, an OSError or a timeout), or a database
# whose disk is full (InsufficientStorage: it stores again once room is made). They never count
# against an event's attempts, or an outage would turn every event into a dead letter; the
# event is retried until the dependency is back.
TRANSIENT: tuple[type[BaseException], ...] = (
    Unavailable,
    InsufficientStorage,
    ConnectionError,
    TimeoutError,
    OSError,
)


class ConsumerGroup:
    def __init__(
        self,
        kind: Kind,
        consumer: Consumer,
        log_: EventLog,
        outbox: OutboxReader,
        worker: str,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.kind = kind
        self._consumer = consumer
        self._log = log_
        self._outbox = outbox
        self._worker = worker
        self._now = now or (lambda: datetime.now(UTC))
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping: dict[int, asyncio.Event] = {}
        # Partitions whose task is handling a batch (not just waiting on a read).
        self._busy: set[int] = set()
        self.handled = 0  # events handled since start (metrics, tests)
        self.dead = 0

    @property
    def partitions(self) -> set[int]:
        """Partitions this group is consuming (or still finishing)."""
        return set(self._tasks)

    def assign(self, partitions: Iterable[int]) -> None:
        """Consume exactly these partitions: start the new ones, ask the others to stop
        after their current batch."""
        wanted = set(partitions)
        for p in wanted - set(self._tasks):
            stopping = self._stopping[p] = asyncio.Event()
            task = asyncio.get_running_loop().create_task(
                self._consume(p, stopping), name=f"consume-{self.kind}-{p}"
            )
            self._tasks[p] = task
            task.add_done_callback(functools.partial(self._forget, p))
        for p in set(self._tasks) - wanted:
            self._stopping[p].set()

    def _forget(self, partition: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(partition, None)
        self._stopping.pop(partition, None)
        self._busy.discard(partition)

    async def stop(self, grace_s: float) -> None:
        """Finish the batches in hand (at most `grace_s`), then cancel what is left; what a
        cancelled task held stays pending in the log for the next owner."""
        tasks = list(self._tasks.values())
        for event in self._stopping.values():
            event.set()
        # A task waiting on a read holds nothing: cancel it now rather than wait out its
        # block (what a cancelled read had fetched stays pending, for the next owner).
        for partition, task in self._tasks.items():
            if partition not in self._busy:
                task.cancel()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_s)
            await asyncio.gather(*(cancel_and_wait(task) for task in late))

    async def _consume(self, partition: int, stopping: asyncio.Event) -> None:
        # What a previous owner held (and what this worker held before a failure) comes
        # first, in order, then new entries.
        mode = PENDING
        taken = False
        while not stopping.is_set():
            try:
                if not taken:
                    await self._log.take_over(self.kind, partition, self._worker)
                    taken = True
                block = 0.0 if mode == PENDING else BLOCK_S
                batch = await self._log.read(
                    self.kind, self._worker, {partition: mode}, count=READ_COUNT, block_s=block
                )
                if not batch:
                    mode = NEW
                    continue
                self._busy.add(partition)
                try:
                    await self._process(partition, batch)
                finally:
                    self._busy.discard(partition)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s consumer on partition %d failed; retrying", self.kind, partition)
                mode = PENDING
                taken = False
                await asyncio.sleep(FAILURE_PAUSE_S)

    async def _process(self, partition: int, batch: list[Delivery]) -> None:
        events: list[DomainEvent] = []
        readable: list[Delivery] = []
        for delivery in batch:
            try:
                events.append(decode_event(delivery.event))
                readable.append(delivery)
            except msgspec.DecodeError as error:
                # Retrying cannot make it readable.
                await self._bury(delivery, delivery.deliveries, f"undecodable event: {error}")
        # The whole batch in one go (few round trips); if that fails, one event at a time
        # with retries, in order, so the event at fault is found and the rest still pass.
        # Effects are idempotent, so what the batch attempt did before failing is harmless.
        try:
            if events:
                await self._consumer.handle_batch(events)
            self.handled += len(events)
        except Exception as error:
            log.warning(
                "%s: a batch of %d failed (%s); one at a time", self.kind, len(events), error
            )
            for delivery, event in zip(readable, events, strict=True):
                await self._handle(delivery, event)
        await self._log.ack(self.kind, partition, [d.log_id for d in batch])

    async def _handle(self, delivery: Delivery, event: DomainEvent) -> None:
        # Each earlier delivery was tried at least once (by this or a dead worker), and the
        # batch attempt just now once more.
        attempt = delivery.deliveries
        outage = 0
        while True:
            attempt += 1
            try:
                await self._consumer.handle(event)
            except TRANSIENT as error:
                attempt -= 1
                outage += 1
                if outage == 1:
                    log.warning("%s: a dependency is unavailable (%s); retrying", self.kind, error)
                await asyncio.sleep(backoff(outage))
            except Exception as error:
                if attempt >= MAX_ATTEMPTS:
                    await self._bury(delivery, attempt, f"{type(error).__name__}: {error}")
                    return
                log.warning(
                    "%s: event %d failed (attempt %d of %d): %s",
                    self.kind,
                    delivery.outbox_id,
                    attempt,
                    MAX_ATTEMPTS,
                    error,
                )
                await asyncio.sleep(backoff(attempt))
            else:
                if outage:
                    log.warning("%s: the dependency is back", self.kind)
                self.handled += 1
                return

    async def _bury(self, delivery: Delivery, attempts: int, error: str) -> None:
        log.error(
            "%s: event %d is a dead letter after %d attempts: %s",
            self.kind,
            delivery.outbox_id,
            attempts,
            error,
        )
        letter = DeadLetter(
            outbox_id=delivery.outbox_id,
            kind=str(self.kind),
            attempts=attempts,
            error=error[:2000],
            failed_at=self._now(),
            event=delivery.event,
        )
        await self._outbox.dead_letter(letter)
        self.dead += 1
