"""The Redis client every Plaza process uses: commands packed by hiredis, with the same
wire bytes and the same refusals as redis-py's own packer."""

from __future__ import annotations

from typing import Any, cast

import pytest
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import DataError

from channels.redis_client import connect

pytestmark = pytest.mark.redis


def _connection(redis_url: str) -> AbstractConnection:
    """A connection of a `connect` client's pool, not connected: packing needs no server."""
    pool = connect(redis_url).connection_pool
    return cast(AbstractConnection, pool.make_connection())  # type: ignore[no-untyped-call]


ARGS: list[tuple[Any, ...]] = [
    ("SET", "plain", "value"),
    ("SET", "unicode", "héllo ✓"),
    ("ZADD", b"bytes", 386256964050391040, "0000000000000000001:7"),
    ("ZADD", "float", 0.30000000000000004, "m", 1e22, "n"),
    ("SET", "view", memoryview(b"from a view")),
    ("SET", "array", bytearray(b"from an array")),
    ("CONFIG GET", "maxmemory"),  # a two-word command name, split like redis-py does
    ("EVALSHA", "a" * 40, 2, "k1", "k2", "x" * 10_000),  # longer than redis-py's chunking
]


@pytest.mark.parametrize("args", ARGS, ids=[str(a[0]) + ":" + str(a[1])[:10] for a in ARGS])
def test_commands_are_packed_to_the_bytes_redis_py_sends(
    redis_url: str, args: tuple[Any, ...]
) -> None:
    connection = _connection(redis_url)
    assert type(connection).pack_command is not Connection.pack_command  # hiredis's
    packed = connection.pack_command(*args)
    assert b"".join(packed) == b"".join(Connection().pack_command(*args))


@pytest.mark.parametrize("value", [None, True, object()])
def test_values_redis_py_refuses_are_refused(redis_url: str, value: object) -> None:
    with pytest.raises(DataError):
        _connection(redis_url).pack_command("SET", "k", cast(Any, value))


async def test_a_round_trip_through_real_redis(redis_url: str, redis_prefix: str) -> None:
    client = connect(redis_url)
    key = f"{redis_prefix}round-trip"
    try:
        await client.set(key, "héllo ✓")
        assert await client.get(key) == "héllo ✓".encode()
        async with client.pipeline(transaction=False) as pipe:
            pipe.zadd(f"{key}:z", {"a": 1.5, "b": 386256964050391040})
            pipe.zrange(f"{key}:z", 0, -1, withscores=True)
            _, members = await pipe.execute()
        assert members == [(b"a", 1.5), (b"b", 386256964050391040.0)]
    finally:
        await client.delete(key, f"{key}:z")
        await client.aclose()
