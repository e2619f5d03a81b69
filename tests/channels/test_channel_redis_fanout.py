"""The Redis backend's wire: what a fan-out costs each instance to read."""

from __future__ import annotations

import pytest

from channels.redis_backend import RedisChannelBackend
from channels.redis_client import connect

pytestmark = pytest.mark.redis


async def test_a_fan_out_is_one_pubsub_message_for_all_its_channels(
    redis_url: str, redis_prefix: str
) -> None:
    """What each instance reads per post: one message naming every channel, whichever of
    them it holds; a single publish keeps its own channel's topic."""
    client = connect(redis_url)
    listener = connect(redis_url, retry=False).pubsub()
    backend = RedisChannelBackend(
        client, pubsub_client=connect(redis_url, retry=False), prefix=redis_prefix
    )
    try:
        await listener.psubscribe(f"{redis_prefix}ps*")
        await listener.get_message(timeout=1.0)  # the psubscribe confirmation
        channels = [f"feed:{n}" for n in range(1, 501)]
        await backend.publish_many(channels, b'{"post":1}', "post-1")
        await backend.publish("feed:7", b'{"solo":1}', "solo-1")
        messages = []
        while (message := await listener.get_message(timeout=1.0)) is not None:
            messages.append(message)
        assert [m["channel"] for m in messages] == [
            f"{redis_prefix}ps-batch".encode(),
            f"{redis_prefix}ps:feed:7".encode(),
        ]
        header, payload = messages[0]["data"].split(b"\n", 1)
        assert payload == b'{"post":1}'
        fields = header.split(b" ")
        assert fields[0::3] == [f"{redis_prefix}ps:{c}".encode() for c in channels]
        assert set(fields[1::3]) == {b"1"}
    finally:
        await listener.aclose()  # type: ignore[no-untyped-call]
        await backend.stop()
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
