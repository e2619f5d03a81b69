from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from payloads import MEDIA, USER, post

from plaza_client.events import decode_event_data
from plaza_client.models import (
    Comment,
    CommentCreated,
    Me,
    Media,
    Notification,
    Page,
    Post,
    Relationship,
    TokenPair,
    User,
    convert,
    decode,
    page_from_ws,
    to_builtins,
)


def test_post_decodes_with_nested_user_and_media() -> None:
    p = convert(post(), Post)
    assert p.id == "900"
    assert p.author == User(
        id=USER["id"],
        username="alice",
        display_name="Alice",
        bio="hi",
        avatar_media_id=None,
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    assert p.media[0].url == "/api/v1/media/77"
    assert (p.like_count, p.comment_count, p.liked_by_me) == (2, 1, True)
    assert p.created_at is not None and p.created_at.tzinfo is not None


def test_unknown_fields_are_ignored() -> None:
    p = convert(post(shiny_new_field={"x": 1}, author={**USER, "verified": True}), Post)
    assert p.author.username == "alice"


def test_ids_stay_strings() -> None:
    raw = b'{"id": "18446744073709551615", "username": "big"}'
    assert decode(raw, User).id == "18446744073709551615"


def test_me_carries_email_others_do_not() -> None:
    me = convert({**USER, "email": "a@example.com"}, Me)
    assert me.email == "a@example.com" and isinstance(me, User)
    # Another user's profile has no email field at all, not an email that is None; an
    # email sent anyway (your own id through GET /users/{id}) is not kept on a User.
    assert "email" not in User.__struct_fields__
    assert not hasattr(convert({**USER, "email": "a@example.com"}, User), "email")
    with pytest.raises(msgspec.ValidationError, match="email"):
        convert(USER, Me)  # a Me without its email is not a Me


def test_lenient_nulls_and_missing_optionals() -> None:
    u = convert({"id": "1", "username": "u", "display_name": None, "bio": None}, User)
    assert u.display_name is None and u.created_at is None
    m = convert({"id": "2", "content_type": "image/gif"}, Media)
    assert m.url is None and m.width is None


def test_notification_shapes() -> None:
    base = {"id": "5", "actor": USER, "read": False, "created_at": "2024-05-01T12:00:00Z"}
    like = convert({**base, "kind": "like", "post_id": "900"}, Notification)
    assert like.kind == "like" and like.post_id == "900" and like.comment_id is None
    follow = convert({**base, "kind": "follow"}, Notification)
    assert follow.post_id is None
    # A kind added later by the server does not break decoding.
    assert convert({**base, "kind": "mention"}, Notification).kind == "mention"


def test_relationship_token_pair_comment() -> None:
    rel = convert(
        {"user_id": "2", "following": True, "followed_by": False, "blocking": False}, Relationship
    )
    assert rel.following and not rel.blocked_by
    pair = convert(
        {
            "access_token": "a",
            "refresh_token": "r",
            "token_type": "Bearer",
            "expires_in": 900,
            "user": {**USER, "email": "a@example.com"},
        },
        TokenPair,
    )
    assert isinstance(pair.user, Me) and pair.user.email == "a@example.com"
    assert pair.expires_in == 900
    c = convert(
        {"id": "3", "post_id": "900", "author": USER, "content": "nice", "created_at": None},
        Comment,
    )
    assert c.post_id == "900"


def test_wrong_types_still_fail_loudly() -> None:
    with pytest.raises(msgspec.ValidationError):
        convert({"id": 5, "username": "u"}, User)


def test_page_is_a_list_with_cursors() -> None:
    page = Page([1, 2], next="2", prev="9")
    assert page == [1, 2] and page.next == "2" and page.prev == "9"
    assert "next='2'" in repr(page)
    assert to_builtins(Page([convert(MEDIA, Media)]))[0]["id"] == "77"


def test_ws_page_result() -> None:
    page = page_from_ws({"items": [post("3"), post("2")], "next_max_id": "2"}, Post)
    assert [p.id for p in page] == ["3", "2"] and page.next == "2"
    end = page_from_ws({"items": [], "next_max_id": None}, Post)
    assert end == [] and end.next is None


def test_event_data_is_typed_where_it_has_a_rest_shape() -> None:
    assert isinstance(decode_event_data("post.created", post()), Post)
    notif = {"id": "1", "kind": "like", "actor": USER, "read": False}
    assert isinstance(decode_event_data("notification.created", notif), Notification)
    created = decode_event_data(
        "comment.created",
        {"comment": {"id": "3", "author": USER, "content": "x"}, "comment_count": 4},
    )
    assert isinstance(created, CommentCreated) and created.comment_count == 4
    counter = {"post_id": "1", "user_id": "2", "like_count": 3}
    assert decode_event_data("post.liked", counter) == counter


def test_event_data_falls_back_to_dict_on_shape_change() -> None:
    odd = {"id": "1"}  # no author/content: not a Post any more
    assert decode_event_data("post.created", odd) == odd
