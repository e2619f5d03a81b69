"""The push codec: channel events spliced into push frames (docs/protocol.md)."""

from __future__ import annotations

import msgspec

from channels.backend import Position
from channels.protocol import SubscribeResult, encode_push
from server.ws.frames import encode_reply


def test_push_splices_the_payload_unchanged() -> None:
    payload = b'{"type":"post.created","data":{"id":"12","content":"\\u00e9 \\"q\\""}}'
    frame = encode_push("feed", Position("3", "ab"), payload)
    assert frame == (
        b'{"push":"event","channel":"feed","offset":"3","epoch":"ab","event":' + payload + b"}"
    )
    assert msgspec.json.decode(frame)["event"] == msgspec.json.decode(payload)


def test_subscribe_result_carries_pushes_as_json_not_strings() -> None:
    push = encode_push("post:1", Position("1", "e"), b'{"type":"post.liked","data":{}}')
    result = SubscribeResult("post:1", "1", "e", True, [msgspec.Raw(push)])
    decoded = msgspec.json.decode(encode_reply(3, result))
    assert decoded == {
        "id": 3,
        "ok": True,
        "result": {
            "channel": "post:1",
            "offset": "1",
            "epoch": "e",
            "recovered": True,
            "events": [msgspec.json.decode(push)],
        },
    }
