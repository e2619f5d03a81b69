"""The event log of a fleet on Redis streams: one stream per partition, one consumer group
per consumer kind, partition leases for the workers.

Keys (under the prefix): `log:epoch` (a random id, set when the log is created), `log:{n}`
(partition n's stream; fields `o` = outbox id, `e` = the encoded event), `log:workers`
(live workers by last heartbeat, Redis time) and `log:lease:{n}` (the worker consuming
partition n; expires LEASE_TTL_S after its last renewal).

A dead worker's entries are reclaimed when its lease has expired: the next owner claims
everything pending in the partition for each group (XAUTOCLAIM, JUSTID so the delivery
counts stay honest) before reading anything new, so the partition's order survives the
takeover. The lease, not an entry's idle time, is the proof that the old owner is gone: an
entry idle for a while may just belong to a long batch of a live worker.

The streams are trimmed only below what every group has acknowledged (XTRIM MINID): a
group that stops consuming makes its stream grow, never lose entries.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

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

__all__ = ["RedisEventLog"]

# Entries per append script call: one round trip for a relay batch.
APPEND_CHUNK = 500
# Consumers with nothing pending, idle this long, are removed from their group: workers
# come and go with every deploy, and their names must not pile up.
STALE_CONSUMER_MS = 3600 * 1000

_APPEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('EPOCH_LOST') end
for i = 2, #KEYS do
  redis.call('XADD', KEYS[i], '*', 'o', ARGV[2 * i - 2], 'e', ARGV[2 * i - 1])
end
return #KEYS - 1
"""

# KEYS[1] workers zset, KEYS[2..] leases. ARGV: worker, ttl ms.
# -> {live workers, owner of each lease or false}
_MEMBERSHIP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local owners = {}
for i = 2, #KEYS do
  local owner = redis.call('GET', KEYS[i])
  if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
  owners[i - 1] = owner
end
return {redis.call('ZCARD', KEYS[1]), owners}
"""

# KEYS: leases to take. ARGV: worker, ttl ms. -> 1/0 per key
_TAKE = """
local got = {}
for i = 1, #KEYS do
  got[i] = redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
return got
"""

# KEYS: the partitions' streams. ARGV: at most how many per stream, then every group that
# must have acknowledged an entry. -> per stream, a flat list of (log id, outbox id) of the
# entries below every group's floor (its oldest pending entry, or past its last delivered).
# XINFO GROUPS and XPENDING in a script: one round trip for all partitions.
_FLOOR = """
local function key(id)
  local ms, seq = string.match(id, '(%d+)-(%d+)')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = key(a)
  local bm, bs = key(b)
  return am < bm or (am == bm and as < bs)
end
-- The first id some group still needs in `stream` (nil: unknown, a group is missing).
local function floor_of(stream, required)
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
  if not ok then return nil end
  local seen, floor = 0, nil
  for _, g in ipairs(groups) do
    local info = {}
    for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
    for _, name in ipairs(required) do
      if info['name'] == name then seen = seen + 1 end
    end
    local bound
    if tonumber(info['pending']) > 0 then
      bound = redis.call('XPENDING', stream, info['name'])[2]
    else
      local ms, seq = key(info['last-delivered-id'])
      bound = string.format('%d-%d', ms, seq + 1)
    end
    if floor == nil or less(bound, floor) then floor = bound end
  end
  if seen < #required then return nil end
  return floor
end
"""

_ACKNOWLEDGED = (
    _FLOOR
    + """
local required = {}
for n = 2, #ARGV do table.insert(required, ARGV[n]) end
local out = {}
for i, stream in ipairs(KEYS) do
  out[i] = {}
  local floor = floor_of(stream, required)
  if floor ~= nil then
    local entries = redis.call('XRANGE', stream, '-', '(' .. floor, 'COUNT', ARGV[1])
    for _, entry in ipairs(entries) do
      local fields = entry[2]
      for j = 1, #fields, 2 do
        if fields[j] == 'o' then
          table.insert(out[i], entry[1])
          table.insert(out[i], fields[j + 1])
        end
      end
    end
  end
end
return out
"""
)

# KEYS: streams. ARGV: per stream the first id to keep, then the required groups. Never
# drops what a group still needs: trims to whichever comes first, that id or the floor.
_FORGET = (
    _FLOOR
    + """
local required = {}
for n = #KEYS + 1, #ARGV do table.insert(required, ARGV[n]) end
for i, stream in ipairs(KEYS) do
  local floor = floor_of(stream, required)
  if floor ~= nil then
    local keep = ARGV[i]
    if less(floor, keep) then keep = floor end
    redis.call('XTRIM', stream, 'MINID', keep)
  end
end
return 1
"""
)

# KEYS[1] stream. ARGV: group, worker. Claims every pending entry (JUSTID: delivery counts
# untouched). -> how many
_CLAIM_ALL = """
local cursor, n = '0-0', 0
repeat
  local reply = redis.call(
    'XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, cursor, 'COUNT', 1000, 'JUSTID')
  cursor = reply[1]
  n = n + #reply[2]
until cursor == '0-0'
return n
"""

# KEYS: leases to give back, if still ours. ARGV: worker.
_RELEASE = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
"""


class RedisEventLog(EventLog):
    def __init__(
        self,
        client: redis.Redis,
        partitions: int,
        groups: Sequence[str],
        *,
        prefix: str,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        super().__init__(partitions)
        self._lease_ttl_ms = int(lease_ttl_s * 1000)
        self._client = client
        self._groups = tuple(groups)
        self._prefix = prefix
        self._append = client.register_script(_APPEND)
        self._membership = client.register_script(_MEMBERSHIP)
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE)
        self._claim_all = client.register_script(_CLAIM_ALL)
        self._acknowledged = client.register_script(_ACKNOWLEDGED)
        self._forget = client.register_script(_FORGET)

    def _stream(self, partition: int) -> str:
        return f"{self._prefix}log:{partition}"

    def _lease(self, partition: int) -> str:
        return f"{self._prefix}log:lease:{partition}"

    @property
    def _epoch_key(self) -> str:
        return f"{self._prefix}log:epoch"

    # --- the relay's side -------------------------------------------------------------------

    async def epoch(self) -> str:
        current = await self._client.get(self._epoch_key)
        if current is not None:
            return _text(current)
        # A new log (first start, or Redis lost everything): groups first, so that once an
        # epoch exists every group reads the partitions from their very first entry.
        for partition in range(self.partitions):
            for group in self._groups:
                try:
                    await self._client.xgroup_create(
                        self._stream(partition), group, id="0", mkstream=True
                    )
                except ResponseError as error:
                    if "BUSYGROUP" not in str(error):
                        raise
        await self._client.set(self._epoch_key, secrets.token_hex(8), nx=True)
        return _text(await self._client.get(self._epoch_key) or b"")

    async def append(self, epoch: str, entries: Sequence[LogEntry]) -> None:
        for start in range(0, len(entries), APPEND_CHUNK):
            chunk = entries[start : start + APPEND_CHUNK]
            keys = [self._epoch_key]
            args: list[Any] = [epoch]
            for entry in chunk:
                keys.append(self._stream(partition_of(entry.key, self.partitions)))
                args.extend((entry.outbox_id, entry.event))
            try:
                await self._append(keys=keys, args=args)
            except ResponseError as error:
                if "EPOCH_LOST" in str(error):
                    raise EpochLost(epoch) from None
                raise

    async def acknowledged(self, limit: int) -> list[Acknowledged]:
        streams = [self._stream(p) for p in range(self.partitions)]
        reply = await self._acknowledged(keys=streams, args=[limit, *self._groups])
        found: list[Acknowledged] = []
        for partition, entries in enumerate(reply):
            for i in range(0, len(entries), 2):
                found.append(Acknowledged(partition, _text(entries[i]), int(entries[i + 1])))
        return found

    async def forget(self, through: Mapping[int, str]) -> None:
        if not through:
            return
        streams = [self._stream(p) for p in through]
        keep = [_next_id(log_id) for log_id in through.values()]
        await self._forget(keys=streams, args=[*keep, *self._groups])

    async def maintain(self) -> None:
        for partition in range(self.partitions):
            stream = self._stream(partition)
            for group in self._groups:
                try:
                    await self._drop_stale_consumers(stream, group)
                except ResponseError:
                    continue  # no such stream or group (yet)

    async def lag(self) -> dict[str, int]:
        # One round trip for every partition (XINFO GROUPS each); a partition whose stream
        # does not exist yet (no epoch) answers an error and counts nothing.
        pipe = self._client.pipeline(transaction=False)
        for partition in range(self.partitions):
            pipe.xinfo_groups(self._stream(partition))
        replies = await pipe.execute(raise_on_error=False)
        totals = dict.fromkeys(self._groups, 0)
        for reply in replies:
            if isinstance(reply, Exception):
                continue
            for info in reply:
                name = _text(info["name"])
                if name in totals:
                    # `lag` (never delivered) is null when Redis cannot tell (an entry was
                    # deleted inside the range): the pending count is then the floor.
                    totals[name] += int(info.get("lag") or 0) + int(info["pending"])
        return totals

    async def _drop_stale_consumers(self, stream: str, group: str) -> None:
        for consumer in await self._client.xinfo_consumers(stream, group):
            if not int(consumer["pending"]) and int(consumer["idle"]) > STALE_CONSUMER_MS:
                await self._client.xgroup_delconsumer(stream, group, consumer["name"])

    # --- the consumers' side ----------------------------------------------------------------

    async def assignment(self, worker: str) -> set[int]:
        ttl_ms = self._lease_ttl_ms
        leases = [self._lease(p) for p in range(self.partitions)]
        live, owners = await self._membership(
            keys=[f"{self._prefix}log:workers", *leases], args=[worker, ttl_ms]
        )
        mine = {p for p, owner in enumerate(owners) if owner and _text(owner) == worker}
        taken = {p for p, owner in enumerate(owners) if owner} - mine
        release, take = rebalance(self.partitions, mine, taken, int(live))
        got: set[int] = set()
        if take:
            results = await self._take(keys=[self._lease(p) for p in take], args=[worker, ttl_ms])
            got = {p for p, ok in zip(take, results, strict=True) if int(ok)}
        return (mine - set(release)) | got

    async def release(self, worker: str, partitions: Sequence[int]) -> None:
        if partitions:
            await self._release(keys=[self._lease(p) for p in partitions], args=[worker])

    async def leave(self, worker: str) -> None:
        await self._client.zrem(f"{self._prefix}log:workers", worker)
        await self.release(worker, list(range(self.partitions)))  # only its own go

    async def take_over(self, group: str, partition: int, worker: str) -> int:
        try:
            return int(await self._claim_all(keys=[self._stream(partition)], args=[group, worker]))
        except ResponseError as error:
            if "NOGROUP" in str(error):
                return 0  # the log is being recreated; nothing to claim
            raise

    async def read(
        self,
        group: str,
        worker: str,
        cursors: Mapping[int, str],
        *,
        count: int,
        block_s: float,
    ) -> list[Delivery]:
        streams = {self._stream(p): (">" if mode == NEW else "0") for p, mode in cursors.items()}
        by_stream = {self._stream(p): p for p in cursors}
        blocking = block_s > 0 and NEW in cursors.values()
        try:
            reply = await self._client.xreadgroup(
                group,
                worker,
                streams,  # type: ignore[arg-type]
                count=count,
                block=int(block_s * 1000) if blocking else None,
            )
        except ResponseError as error:
            if "NOGROUP" in str(error):
                return []  # the log is being recreated (Redis lost it); read again soon
            raise
        found: list[Delivery] = []
        rows: list[Any] = list(reply or [])
        for raw_stream, entries in rows:
            stream = _text(raw_stream)
            partition = by_stream[stream]
            pending = streams[stream] == "0"
            counts = await self._delivery_counts(stream, group, worker, entries) if pending else {}
            trimmed: list[str] = []
            for raw_id, fields in entries:
                log_id = _text(raw_id)
                if not fields:
                    trimmed.append(log_id)  # pending but gone from the stream
                    continue
                found.append(
                    Delivery(
                        partition,
                        log_id,
                        int(fields[b"o"]),
                        bytes(fields[b"e"]),
                        counts.get(log_id, 1),
                    )
                )
            if trimmed:
                await self._client.xack(stream, group, *trimmed)
        return found

    async def _delivery_counts(
        self, stream: str, group: str, worker: str, entries: list[Any]
    ) -> dict[str, int]:
        if not entries:
            return {}
        first, last = _text(entries[0][0]), _text(entries[-1][0])
        rows = await self._client.xpending_range(
            stream, group, min=first, max=last, count=len(entries), consumername=worker
        )
        return {_text(row["message_id"]): int(row["times_delivered"]) for row in rows}

    async def ack(self, group: str, partition: int, log_ids: Sequence[str]) -> None:
        if log_ids:
            await self._client.xack(self._stream(partition), group, *log_ids)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(log_id: str) -> tuple[int, int]:
    ms, _, seq = log_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(log_id: str) -> str:
    ms, seq = _id_key(log_id)
    return f"{ms}-{seq + 1}"
