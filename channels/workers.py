"""An event worker: the relay candidate plus one consumer group per consumer kind.

`plaza worker` runs one (a fleet runs several; they share the partitions of the event log
by leases), and an embedded `plaza serve` runs one in-process on the memory log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from channels.consumer_groups import ConsumerGroup
from channels.eventlog import LEASE_RENEW_S, EventLog
from channels.relay import OutboxRelay
from channels.tasks import cancel_and_wait
from domain.consumers import Consumer, Kind
from domain.ports import Leadership, OutboxReader

__all__ = ["EventWorker"]

log = logging.getLogger("plaza.worker")

# On shutdown, batches in hand get this long to finish before their tasks are cancelled
# (their entries then stay pending for the next owner): comfortably inside the 30 s a
# process manager usually allows between SIGTERM and SIGKILL.
STOP_GRACE_S = 10.0


class EventWorker:
    def __init__(
        self,
        log_: EventLog,
        outbox: OutboxReader,
        consumers: Mapping[Kind, Consumer],
        worker_id: str,
        *,
        leadership: Leadership | None = None,
        now: Callable[[], datetime] | None = None,
        renew_s: float = LEASE_RENEW_S,
    ) -> None:
        self.worker_id = worker_id
        self._renew_s = renew_s
        self._log = log_
        # A worker without leadership only consumes (it never relays).
        self.relay = (
            OutboxRelay(outbox, log_, leadership, now=now) if leadership is not None else None
        )
        self.groups = [
            ConsumerGroup(kind, consumers[kind], log_, outbox, worker_id, now=now) for kind in Kind
        ]
        self._held: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def partitions(self) -> set[int]:
        """Partitions this worker holds leases for."""
        return set(self._held)

    def wake(self) -> None:
        """A local commit appended outbox entries (embedded: no NOTIFY needed)."""
        if self.relay is not None:
            self.relay.wake()

    async def start(self) -> None:
        if self.relay is not None:
            self.relay.start()
        self._task = asyncio.get_running_loop().create_task(
            self._balance_forever(), name="event-worker-balance"
        )

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM: stop reading, let batches in hand finish, hand the partitions back."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await asyncio.gather(*(group.stop(grace_s) for group in self.groups))
        self._held = set()
        with contextlib.suppress(Exception):
            await self._log.leave(self.worker_id)
        if self.relay is not None:
            await self.relay.stop()

    async def _balance_forever(self) -> None:
        while True:
            try:
                await self.balance()
            except Exception:  # Redis away: keep consuming what we hold; retry soon
                log.exception("partition balance failed; retrying")
            await asyncio.sleep(self._renew_s)

    async def balance(self) -> None:
        """Renew leases, follow the assignment, release what every group has let go."""
        wanted = await self._log.assignment(self.worker_id)
        for group in self.groups:
            group.assign(wanted)
        running = set().union(*(group.partitions for group in self.groups))
        finished = self._held - wanted - running
        if finished:
            await self._log.release(self.worker_id, sorted(finished))
        held = wanted | running
        if held != self._held:
            log.info("worker %s consumes partitions %s", self.worker_id, sorted(wanted) or "none")
        self._held = held
