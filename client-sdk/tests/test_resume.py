"""ResumeState: what is delivered, in which order, and what is sent on resubscribe."""

from __future__ import annotations

from typing import Any

from payloads import push

from plaza_client.events import RESYNC, Position, Resync
from plaza_client.resume import ResumeState


def offsets(events: list[Any]) -> list[str | None]:
    return [e.offset for e in events]


def subscribed(offset: str = "0", epoch: str = "e1", **extra: Any) -> dict[str, Any]:
    return {"channel": "feed", "offset": offset, "epoch": epoch, "recovered": False, **extra}


def fresh() -> ResumeState:
    state = ResumeState()
    state.add("feed")
    assert state.subscribe_args("feed") == {"channel": "feed"}
    assert state.on_subscribed("feed", subscribed()) == []
    return state


def test_first_subscribe_has_no_since_and_no_resync() -> None:
    state = fresh()
    assert state.position("feed") == Position("0", "e1")
    assert not state.pending("feed")


def test_live_pushes_are_delivered_in_order_and_move_the_position() -> None:
    state = fresh()
    out = [e for o in ("1", "2", "3") for e in state.on_push(push(o))]
    assert offsets(out) == ["1", "2", "3"]
    assert out[0].type == "post.created" and out[0].data.id == "p1"
    assert state.position("feed") == Position("3", "e1")


def test_duplicate_push_is_dropped() -> None:
    state = fresh()
    assert offsets(state.on_push(push("1"))) == ["1"]
    assert state.on_push(push("1")) == []
    # Same offset in another epoch is a different event.
    assert offsets(state.on_push(push("1", epoch="e2"))) == ["1"]


def test_resubscribe_sends_last_delivered_position() -> None:
    state = fresh()
    state.on_push(push("1"))
    state.on_push(push("2"))
    state.connection_lost()
    assert state.subscribe_args("feed") == {
        "channel": "feed",
        "since": {"offset": "2", "epoch": "e1"},
    }


def test_resubscribe_without_events_uses_subscribe_position() -> None:
    state = fresh()
    state.connection_lost()
    assert state.subscribe_args("feed")["since"] == {"offset": "0", "epoch": "e1"}


def test_recovered_events_then_held_back_pushes_without_duplicates() -> None:
    state = fresh()
    for o in ("1", "2", "3"):
        state.on_push(push(o))
    state.connection_lost()
    state.subscribe_args("feed")
    # Pushes that arrive before the subscribe reply are held back...
    assert state.on_push(push("5")) == []
    assert state.on_push(push("6")) == []
    # ...because the reply's missed events come first; 3 overlaps what was delivered.
    result = subscribed("5", recovered=True, events=[push("3"), push("4"), push("5")])
    out = state.on_subscribed("feed", result)
    assert offsets(out) == ["4", "5", "6"]
    assert [e.recovered for e in out] == [True, True, False]
    assert state.position("feed") == Position("6", "e1")
    assert offsets(state.on_push(push("6"))) == []
    assert offsets(state.on_push(push("7"))) == ["7"]


def test_unrecoverable_gap_yields_resync_first() -> None:
    state = fresh()
    state.on_push(push("1"))
    state.connection_lost()
    state.subscribe_args("feed")
    state.on_push(push("101", epoch="e2"))
    out = state.on_subscribed("feed", subscribed("100", "e2"))
    assert [e.type for e in out] == [RESYNC, "post.created"]
    resync = out[0]
    assert isinstance(resync.data, Resync) and resync.data.channel == "feed"
    assert resync.data.page is None
    assert (resync.offset, resync.epoch) == ("100", "e2")
    assert state.position("feed") == Position("101", "e2")


def test_resume_from_saved_position() -> None:
    state = ResumeState()
    state.add("notifications", since=Position("41", "e9"))
    args = state.subscribe_args("notifications")
    assert args["since"] == {"offset": "41", "epoch": "e9"}
    got = state.on_subscribed(
        "notifications",
        {
            "offset": "42",
            "epoch": "e9",
            "recovered": True,
            "events": [push("42", "e9", "notifications")],
        },
    )
    assert offsets(got) == ["42"] and got[0].channel == "notifications"


def test_add_is_idempotent_and_keeps_position() -> None:
    state = fresh()
    state.on_push(push("1"))
    state.add("feed", since=Position("zzz", "e0"))
    assert state.position("feed") == Position("1", "e1")
    assert state.channels == ["feed"]


def test_connection_lost_drops_held_back_pushes() -> None:
    state = fresh()
    state.connection_lost()
    state.subscribe_args("feed")
    state.on_push(push("1"))
    state.connection_lost()  # the reply never came; the push will be recovered by since
    state.subscribe_args("feed")
    out = state.on_subscribed("feed", subscribed("1", recovered=True, events=[push("1")]))
    assert offsets(out) == ["1"]


def test_unknown_and_removed_channels_are_ignored() -> None:
    state = fresh()
    assert state.on_push(push("1", channel="public")) == []
    state.remove("feed")
    assert state.on_push(push("2")) == []
    assert state.on_subscribed("feed", subscribed()) == []
    assert "feed" not in state


def test_subscribe_failure_stops_tracking() -> None:
    state = ResumeState()
    state.add("post:1")
    state.subscribe_args("post:1")
    state.on_subscribe_failed("post:1")
    assert state.channels == []


def test_reply_for_a_subscribe_not_in_flight_is_ignored() -> None:
    state = fresh()
    assert state.on_subscribed("feed", subscribed("9", recovered=True, events=[push("9")])) == []


def test_malformed_pushes_are_dropped() -> None:
    state = fresh()
    assert state.on_push({"push": "event", "channel": "feed"}) == []
    assert state.on_push({"push": "event", "channel": 5}) == []
    bad_type = {**push("1"), "event": {"data": {}}}
    assert state.on_push(bad_type) == []


def test_pushes_without_offsets_are_delivered_but_not_deduped() -> None:
    state = fresh()
    bare = {"push": "event", "channel": "feed", "event": {"type": "x", "data": {}}}
    assert len(state.on_push(bare)) == 1 and len(state.on_push(bare)) == 1
    assert state.position("feed") == Position("0", "e1")


def test_dedupe_window_is_bounded() -> None:
    state = ResumeState(dedupe_window=3)
    state.add("feed")
    state.subscribe_args("feed")
    state.on_subscribed("feed", subscribed())
    for o in ("1", "2", "3", "4"):
        state.on_push(push(o))
    assert state.on_push(push("4")) == []  # still remembered
    assert offsets(state.on_push(push("1"))) == ["1"]  # evicted: the window is 3
