"""Snowflake node ids for the processes of a fleet, claimed in Redis.

Two processes minting ids with the same node id collide on the very first millisecond
they share, and a colliding post or like would be lost or refused. So unless PLAZA_NODE_ID
pins one, each process of a fleet claims a free id at start (a key per id, held with a
TTL and renewed while the process lives) and an embedded process, alone, uses 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

import redis.asyncio as redis

from channels.tasks import cancel_and_wait
from domain.ids import MAX_NODE

log = logging.getLogger("plaza.node_ids")

# A claim outlives its owner by this long, and is renewed three times as often: a process
# that dies frees its id within a minute, one that lives never loses it to a hiccup.
CLAIM_TTL_S = 60
RENEW_S = 20


class NodeIdClaim:
    def __init__(self, client: redis.Redis, prefix: str, owner: str) -> None:
        self._client = client
        self._prefix = prefix
        self._owner = owner
        self.node_id: int | None = None
        self._task: asyncio.Task[None] | None = None

    def _key(self, node: int) -> str:
        return f"{self._prefix}node:{node}"

    async def claim(self) -> int:
        """A node id no other live process holds; RuntimeError when all 1024 are taken."""
        # Start where this owner's name hashes to, so restarts tend to get the same id.
        start = zlib.crc32(self._owner.encode()) % (MAX_NODE + 1)
        for step in range(MAX_NODE + 1):
            node = (start + step) % (MAX_NODE + 1)
            if await self._client.set(self._key(node), self._owner, nx=True, ex=CLAIM_TTL_S):
                self.node_id = node
                self._task = asyncio.get_running_loop().create_task(
                    self._renew_forever(), name="node-id-renewal"
                )
                return node
        raise RuntimeError("every snowflake node id (0-1023) is held by a live process")

    async def _renew_forever(self) -> None:
        assert self.node_id is not None
        key = self._key(self.node_id)
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                owner = await self._client.get(key)
                if owner is not None and owner != self._owner.encode():
                    log.error("node id %d was taken over by another process", self.node_id)
                await self._client.set(key, self._owner, ex=CLAIM_TTL_S)
            except Exception as error:  # Redis away: the TTL leaves a minute to come back
                log.warning("could not renew node id %d: %s", self.node_id, error)

    async def release(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        if self.node_id is not None:
            with contextlib.suppress(Exception):
                if await self._client.get(self._key(self.node_id)) == self._owner.encode():
                    await self._client.delete(self._key(self.node_id))
