"""The embedded event log: an outbox relay that hands committed events to consumers.

A write commits its rows and its outbox entries together; this relay then reads pending
entries oldest first, gives each to every consumer and marks it relayed. A crash between
commit and relay loses nothing: the next start resumes from the outbox. Delivery is at
least once (a crash after dispatch but before marking replays the batch), which is why
every consumer is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from domain.consumers import Consumer
from domain.events import decode_event
from domain.ports import OutboxReader

log = logging.getLogger("plaza.eventlog")

# One batch is one SELECT and one UPDATE; 100 keeps a burst cheap without holding a long
# transaction or delaying the first event of a batch behind hundreds of others.
BATCH_SIZE = 100
# Commits wake the relay at once; the poll is only the safety net for entries written by
# another process (a web process without workers) or left by a crash.
POLL_SECONDS = 1.0
# A consumer that keeps failing on one event must not wedge every event behind it: after
# this many attempts (with backoff) the event is logged and skipped.
MAX_ATTEMPTS = 5
# Relayed entries are kept a day for inspection, then purged.
KEEP_RELAYED = timedelta(days=1)


class OutboxRelay:
    def __init__(
        self,
        reader: OutboxReader,
        consumers: Sequence[Consumer],
        *,
        now: Callable[[], datetime] | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._reader = reader
        self._consumers = list(consumers)
        self._now = now or (lambda: datetime.now(UTC))
        self._poll = poll_seconds
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._attempts: dict[int, int] = {}
        self._last_purge = 0.0

    def wake(self) -> None:
        """Called after a transaction that appended events commits."""
        self._idle.clear()
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        while True:
            # Cleared before reading, so a commit that lands while we read wakes us again.
            self._wakeup.clear()
            try:
                moved = await self.relay_once()
            except Exception:  # a database hiccup must not kill the relay for good
                log.exception("outbox relay failed; retrying")
                moved = 0
                await asyncio.sleep(self._poll)
            if moved:
                continue
            if not self._wakeup.is_set():
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll)

    async def drain(self, wait_seconds: float = 10.0) -> None:
        """Wait until everything committed so far has been relayed (tests, shutdown)."""
        if self._task is None:
            while await self.relay_once():
                pass
            return
        self.wake()
        await asyncio.wait_for(self._idle.wait(), wait_seconds)

    async def relay_once(self) -> int:
        """Relay one batch; returns how many entries were marked relayed."""
        entries = await self._reader.pending(BATCH_SIZE)
        done: list[int] = []
        for outbox_id, payload in entries:
            if not await self._deliver(outbox_id, payload):
                break  # keep order: retry this entry (and those after it) later
            done.append(outbox_id)
        if done:
            await self._reader.mark_relayed(done, self._now())
        await self._maybe_purge()
        return len(done)

    async def _deliver(self, outbox_id: int, payload: bytes) -> bool:
        try:
            event = decode_event(payload)
        except msgspec.DecodeError:
            log.error("outbox entry %s is not a known event; skipped", outbox_id)
            return True
        try:
            for consumer in self._consumers:
                await consumer.handle(event)
        except Exception:
            attempts = self._attempts.get(outbox_id, 0) + 1
            self._attempts[outbox_id] = attempts
            if attempts >= MAX_ATTEMPTS:
                log.exception("event %s failed %d times; skipped", outbox_id, attempts)
                self._attempts.pop(outbox_id, None)
                return True
            log.exception("event %s failed (attempt %d); will retry", outbox_id, attempts)
            await asyncio.sleep(min(0.1 * 2**attempts, 5.0))
            return False
        self._attempts.pop(outbox_id, None)
        return True

    async def _maybe_purge(self) -> None:
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._last_purge < 3600:
            return
        self._last_purge = loop_now
        await self._reader.purge_relayed(self._now() - KEEP_RELAYED)
