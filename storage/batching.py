"""Look-ups asked for in the same turn of the event loop, answered by one query.

A reconnect storm authenticates thousands of sockets within a second, and a busy REST
instance authenticates every request: each asks the same one-row question, so the
questions of one loop turn are gathered and sent as one statement (DataLoader's idea).
A lone caller waits one loop turn longer, not one round trip.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

__all__ = ["TurnBatcher"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TurnBatcher(Generic[K, V]):
    """`get(key)` answers `lookup(keys)[key]` (None when absent), one `lookup` call per
    loop turn for every key asked in it, in chunks of `max_batch`.

    The lookup runs in a context of its own (no caller's transaction), so use it for
    reads that need none. Its failure is every waiting caller's failure.
    """

    def __init__(
        self, lookup: Callable[[Sequence[K]], Awaitable[dict[K, V]]], *, max_batch: int
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be positive")
        self._lookup = lookup
        self._max = max_batch
        self._asked: dict[K, list[asyncio.Future[V | None]]] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        if self._asked is None:
            self._asked = {}
            # After the callbacks already ready in this turn, so their questions join.
            loop.call_soon(self._flush, context=contextvars.Context())
        future: asyncio.Future[V | None] = loop.create_future()
        self._asked.setdefault(key, []).append(future)
        return await future

    def _flush(self) -> None:
        asked, self._asked = self._asked, None
        if not asked:
            return
        task = asyncio.get_running_loop().create_task(self._answer(asked))
        self._running.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._running.discard)

    async def _answer(self, asked: dict[K, list[asyncio.Future[V | None]]]) -> None:
        keys = list(asked)
        found: dict[K, V] = {}
        try:
            for start in range(0, len(keys), self._max):
                found.update(await self._lookup(keys[start : start + self._max]))
        except asyncio.CancelledError:  # shutting down: so are the callers
            for futures in asked.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as error:
            for futures in asked.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return
        for key, futures in asked.items():
            for future in futures:
                if not future.done():  # a caller that gave up is not answered
                    future.set_result(found.get(key))
