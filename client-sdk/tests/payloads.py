"""Example payloads in the shapes of docs/protocol.md, shared by the SDK unit tests."""

from __future__ import annotations

from typing import Any

USER: dict[str, Any] = {
    "id": "1099511627776001",
    "username": "alice",
    "display_name": "Alice",
    "bio": "hi",
    "avatar_media_id": None,
    "created_at": "2024-05-01T12:00:00Z",
}

MEDIA: dict[str, Any] = {
    "id": "77",
    "content_type": "image/png",
    "width": 640,
    "height": 480,
    "size": 1234,
    "url": "/api/v1/media/77",
    "created_at": "2024-05-01T12:00:01Z",
}


def post(post_id: str = "900", **extra: Any) -> dict[str, Any]:
    return {
        "id": post_id,
        "author": USER,
        "content": "hello",
        "media": [MEDIA],
        "like_count": 2,
        "comment_count": 1,
        "liked_by_me": True,
        "created_at": "2024-05-01T12:00:02.123456Z",
        **extra,
    }


def push(offset: str, epoch: str = "e1", channel: str = "feed") -> dict[str, Any]:
    return {
        "push": "event",
        "channel": channel,
        "offset": offset,
        "epoch": epoch,
        "event": {"type": "post.created", "data": post(f"p{offset}")},
    }
