"""ResyncFilter: a live event whose item is already in the resync page is not repeated."""

from __future__ import annotations

from payloads import post

from plaza_client._resync import ResyncFilter
from plaza_client.events import LiveEvent, decode_event_data
from plaza_client.models import Page, Post, convert


def created(post_id: str, channel: str = "feed") -> LiveEvent:
    return LiveEvent(channel, "post.created", decode_event_data("post.created", post(post_id)))


def test_drops_items_already_in_the_page() -> None:
    f = ResyncFilter()
    f.remember("feed", Page([convert(post("9"), Post), convert(post("8"), Post)]))
    assert f.is_duplicate(created("9"))
    assert not f.is_duplicate(created("10"))
    assert not f.is_duplicate(created("9", channel="public"))


def test_only_item_adding_events_are_filtered() -> None:
    f = ResyncFilter()
    f.remember("feed", Page([convert(post("9"), Post)]))
    deleted = LiveEvent("feed", "post.deleted", {"post_id": "9"})
    assert not f.is_duplicate(deleted)


def test_forget_and_empty_pages() -> None:
    f = ResyncFilter()
    f.remember("feed", None)
    assert not f.is_duplicate(created("9"))
    f.remember("feed", Page([convert(post("9"), Post)]))
    f.forget("feed")
    assert not f.is_duplicate(created("9"))
