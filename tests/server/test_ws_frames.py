"""Decoding client frames and encoding the session's own frames (docs/protocol.md)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from frame_strategies import RAW_FRAMES
from hypothesis import given, settings

from channels.backend import Position
from server.ws.frames import CloseCode, encode_close_soon, encode_error, encode_reply
from server.ws.ops import (
    INVALID_FRAME,
    OPS,
    UNKNOWN_OP,
    VALIDATION_ERROR,
    Auth,
    CommentCreate,
    FeedPage,
    FrameError,
    NotificationsRead,
    Ping,
    PostCreate,
    PostLike,
    Search,
    Subscribe,
    UserFollow,
    decode_request,
)


def frame_error(frame: bytes | str) -> FrameError:
    with pytest.raises(FrameError) as info:
        decode_request(frame)
    return info.value


def test_every_op_of_the_protocol_is_known() -> None:
    assert {
        "auth",
        "subscribe",
        "unsubscribe",
        "ping",
        "post.create",
        "post.delete",
        "post.like",
        "post.unlike",
        "comment.create",
        "user.follow",
        "user.unfollow",
        "user.block",
        "user.unblock",
        "feed.page",
        "notifications.page",
        "notifications.read",
        "search",
    } == OPS


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'{"id": 1, "op": "auth", "token": "t"}', Auth(id=1, token="t")),
        (b'{"op": "ping", "id": 2}', Ping(id=2)),
        (
            '{"id": 3, "op": "post.create", "content": "héllo", "media_ids": ["12"]}',
            PostCreate(id=3, content="héllo", media_ids=["12"]),
        ),
        (
            b'{"id": 4, "op": "post.like", "post_id": "9007199254740993"}',
            PostLike(4, "9007199254740993"),
        ),
        (
            b'{"id": 5, "op": "comment.create", "post_id": "1", "content": "hi"}',
            CommentCreate(id=5, post_id="1", content="hi"),
        ),
        (b'{"id": 6, "op": "user.follow", "user_id": "42"}', UserFollow(id=6, user_id="42")),
        (b'{"id": 7, "op": "feed.page"}', FeedPage(id=7)),
        (b'{"id": 8, "op": "feed.page", "max_id": "5", "limit": 80}', FeedPage(8, "5", 80)),
        (b'{"id": 9, "op": "notifications.read"}', NotificationsRead(id=9)),
        (b'{"id": 10, "op": "search", "q": "ann", "type": "users"}', Search(10, "ann", "users")),
        # Unknown extra fields are ignored: arguments sit beside id and op.
        (b'{"id": 11, "op": "ping", "extra": [1, 2]}', Ping(id=11)),
    ],
)
def test_requests_decode_to_their_types(frame: bytes | str, expected: Any) -> None:
    assert decode_request(frame) == expected


def test_subscribe_since_is_a_position_or_unrecoverable() -> None:
    plain = decode_request(b'{"id": 1, "op": "subscribe", "channel": "feed"}')
    assert isinstance(plain, Subscribe)
    assert plain.position is None
    since = decode_request(
        b'{"id": 2, "op": "subscribe", "channel": "feed", "since": {"offset": "5", "epoch": "e"}}'
    )
    assert isinstance(since, Subscribe)
    assert since.position == Position("5", "e")
    # An unreadable since is not an error reply: it just cannot be recovered.
    for bad in (b'"x"', b'{"offset": 5, "epoch": "e"}', b"{}", b"[1]"):
        request = decode_request(
            b'{"id": 3, "op": "subscribe", "channel": "feed", "since": %s}' % bad
        )
        assert isinstance(request, Subscribe)
        assert request.position == Position("", "")


@pytest.mark.parametrize("frame", [b"", b"{", b"not json", b'{"id": 1, "op": "ping"', b"\xff"])
def test_malformed_json_is_an_invalid_frame_without_id(frame: bytes) -> None:
    error = frame_error(frame)
    assert (error.code, error.request_id) == (INVALID_FRAME, None)
    assert error.is_violation


@pytest.mark.parametrize("frame", [b"[]", b"1", b'"ping"', b"null", b'[{"id": 1, "op": "ping"}]'])
def test_a_frame_that_is_not_an_object_is_invalid(frame: bytes) -> None:
    error = frame_error(frame)
    assert (error.code, error.request_id) == (INVALID_FRAME, None)


@pytest.mark.parametrize(
    ("frame", "request_id"),
    [
        (b'{"op": "ping"}', None),
        (b'{"id": "1", "op": "ping"}', None),
        (b'{"id": true, "op": "ping"}', None),
        (b'{"id": 1.5, "op": "ping"}', None),
        (b'{"id": 12}', 12),
        (b'{"id": 13, "op": 5}', 13),
        (b'{"id": 14, "op": null}', 14),
    ],
)
def test_missing_id_or_op_is_invalid_and_keeps_a_readable_id(
    frame: bytes, request_id: int | None
) -> None:
    error = frame_error(frame)
    assert (error.code, error.request_id) == (INVALID_FRAME, request_id)


def test_unknown_op_keeps_the_id() -> None:
    error = frame_error(b'{"id": 7, "op": "post.explode"}')
    assert (error.code, error.request_id) == (UNKNOWN_OP, 7)
    assert error.is_violation


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (b'{"id": 8, "op": "auth"}', "token"),
        (b'{"id": 8, "op": "post.like", "post_id": 5}', "post_id"),
        (b'{"id": 8, "op": "post.like"}', "post_id"),
        (b'{"id": 8, "op": "feed.page", "limit": 0}', "limit"),
        (b'{"id": 8, "op": "search", "q": "x", "type": "hashtags"}', "type"),
        (b'{"id": 8, "op": "post.create", "content": "x", "media_ids": "12"}', "media_ids"),
    ],
)
def test_bad_arguments_are_a_validation_error_naming_the_field(frame: bytes, field: str) -> None:
    error = frame_error(frame)
    assert (error.code, error.request_id) == (VALIDATION_ERROR, 8)
    assert error.message
    assert error.details == {"field": field}
    assert not error.is_violation


def test_deeply_nested_json_is_an_ordinary_invalid_frame() -> None:
    nested = b"[" * 1000 + b"]" * 1000
    error = frame_error(nested)
    assert (error.code, error.request_id) == (INVALID_FRAME, None)
    # Nested inside an otherwise fine request: still a bad frame, never a crash.
    deep_arg = frame_error(b'{"id": 9, "op": "ping", "x": ' + nested + b"}")
    assert deep_arg.code == INVALID_FRAME and deep_arg.is_violation


def test_reply_encoding() -> None:
    assert encode_reply(7, {}) == b'{"id":7,"ok":true,"result":{}}'
    assert msgspec.json.decode(encode_reply(8, {"items": [], "next_max_id": None})) == {
        "id": 8,
        "ok": True,
        "result": {"items": [], "next_max_id": None},
    }


def test_error_encoding() -> None:
    assert encode_error(7, "not_found", "no such post") == (
        b'{"id":7,"ok":false,"error":{"code":"not_found","message":"no such post",'
        b'"retryable":false}}'
    )
    assert msgspec.json.decode(
        encode_error(None, "rate_limited", "slow down", retryable=True, details={"s": 1})
    ) == {
        "id": None,
        "ok": False,
        "error": {
            "code": "rate_limited",
            "message": "slow down",
            "retryable": True,
            "details": {"s": 1},
        },
    }


def test_close_soon_encoding() -> None:
    assert encode_close_soon(CloseCode.GOING_AWAY, "restarting") == (
        b'{"push":"close_soon","code":4000,"reason":"restarting"}'
    )


def test_close_codes_are_the_protocol_values() -> None:
    assert sorted(int(c) for c in CloseCode) == [
        1000,
        1009,
        4000,
        4001,
        4008,
        4029,
        4401,
        4500,
        4503,
    ]
    # 4000-4499 invite a reconnect; 4500-4999 do not.
    assert CloseCode.SLOW_CONSUMER < 4500 <= CloseCode.PROTOCOL_VIOLATION


@given(frame=RAW_FRAMES)
@settings(max_examples=500, deadline=None)
def test_the_decoder_answers_any_frame_with_a_request_or_a_frame_error(
    frame: bytes | str,
) -> None:
    """Fuzzed (hypothesis): nothing but FrameError ever escapes the decoder."""
    with contextlib.suppress(FrameError):
        decode_request(frame)
