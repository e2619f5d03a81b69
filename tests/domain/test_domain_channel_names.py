"""Client channel names versus internal ones (domain.channel_names)."""

from __future__ import annotations

import pytest

from domain.channel_names import (
    PUBLIC,
    channel_id,
    client_name,
    feed,
    notifications,
    post,
    resolve,
    user,
)
from domain.errors import NotFound


@pytest.mark.parametrize(
    ("name", "internal"),
    [
        ("feed", "feed:7"),
        ("notifications", "notifications:7"),
        ("public", "public"),
        ("post:12", "post:12"),
        ("user:9223372036854775807", "user:9223372036854775807"),
    ],
)
def test_resolve_and_back(name: str, internal: str) -> None:
    assert resolve(name, 7) == internal
    assert client_name(internal) == name


def test_private_channels_are_the_session_users_own() -> None:
    assert resolve("feed", 1) != resolve("feed", 2)
    with pytest.raises(NotFound):
        resolve("feed:2", 1)  # no naming someone else's feed
    with pytest.raises(NotFound):
        resolve("notifications:2", 1)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Feed",
        "post",
        "post:",
        "post:0",
        "post:012",
        "post:-1",
        "post:+1",
        "post:1.0",
        "post:abc",
        "post:9223372036854775808",
        "post:\u0661",
        "post:1:2",
        "comment:1",
        "public:1",
    ],
)
def test_unknown_channels_are_refused(name: str) -> None:
    with pytest.raises(NotFound):
        resolve(name, 7)


def test_builders_match_resolve() -> None:
    assert feed(3) == resolve("feed", 3)
    assert notifications(3) == resolve("notifications", 3)
    assert post(5) == resolve("post:5", 3)
    assert user(5) == resolve("user:5", 3)
    assert resolve("public", 3) == PUBLIC


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("9223372036854775807", 2**63 - 1), ("0", None), ("9223372036854775808", None)],
)
def test_channel_ids_use_the_one_id_parser(text: str, value: int | None) -> None:
    # A bad id in a channel name is an unknown channel (404), not a bad argument (422).
    if value is None:
        with pytest.raises(NotFound):
            channel_id(text)
    else:
        assert channel_id(text) == value
