"""FrameRouter: replies reach their callers, subscribe replies reach the ResumeState."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from payloads import push

from plaza_client._router import FrameRouter
from plaza_client.errors import NotFound, PlazaError
from plaza_client.events import SUBSCRIPTION_LOST
from plaza_client.live import Subscription
from plaza_client.resume import ResumeState


def router() -> tuple[FrameRouter, asyncio.Queue[Any]]:
    events: asyncio.Queue[Any] = asyncio.Queue()
    return FrameRouter(ResumeState(), events), events


def drain(queue: asyncio.Queue[Any]) -> list[Any]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_reply_resolves_its_future() -> None:
    r, _ = router()
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    request_id = r.expect("post.like", future)
    r.on_frame(json.dumps({"id": request_id, "ok": True, "result": {"like_count": 1}}))
    assert future.result() == {"like_count": 1}
    assert r.pending == {}


async def test_error_reply_raises_mapped_error() -> None:
    r, _ = router()
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    request_id = r.expect("post.like", future)
    error = {"code": "not_found", "message": "no such post", "retryable": False}
    r.on_frame(json.dumps({"id": request_id, "ok": False, "error": error}))
    with pytest.raises(NotFound, match="no such post"):
        future.result()


async def test_subscribe_reply_delivers_and_resolves_ready() -> None:
    r, events = router()
    r.state.add("feed")
    ready: asyncio.Future[Subscription] = asyncio.get_running_loop().create_future()
    r.ready["feed"] = ready
    r.state.subscribe_args("feed")
    request_id = r.expect("subscribe", channel="feed")
    r.on_frame(json.dumps(push("1")))  # before the reply: held back
    assert drain(events) == []
    result = {"channel": "feed", "offset": "0", "epoch": "e1", "recovered": False, "events": []}
    r.on_frame(json.dumps({"id": request_id, "ok": True, "result": result}))
    assert [e.offset for e in drain(events)] == ["1"]
    assert ready.result().recovered is False


async def test_failed_resubscribe_is_reported_on_the_stream() -> None:
    r, events = router()
    r.state.add("post:9")
    r.state.subscribe_args("post:9")
    request_id = r.expect("subscribe", channel="post:9")
    error = {"code": "forbidden", "message": "blocked", "retryable": False}
    r.on_frame(json.dumps({"id": request_id, "ok": False, "error": error}))
    (event,) = drain(events)
    assert event.type == SUBSCRIPTION_LOST and event.data["code"] == "forbidden"
    assert "post:9" not in r.state


async def test_junk_and_unknown_frames_are_ignored() -> None:
    r, events = router()
    r.on_frame("not json")
    r.on_frame("[1, 2]")
    r.on_frame(json.dumps({"push": "close_soon", "code": 4000, "reason": "deploy"}))
    r.on_frame(json.dumps({"push": "something_new"}))
    r.on_frame(json.dumps({"id": None, "ok": False, "error": {"code": "invalid_frame"}}))
    r.on_frame(json.dumps({"id": 999, "ok": True, "result": {}}))  # nobody waits
    assert drain(events) == []


async def test_fail_pending() -> None:
    r, _ = router()
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    r.expect("ping", future)
    r.fail_pending(PlazaError("gone"))
    assert isinstance(future.exception(), PlazaError) and r.pending == {}
