"""GET /metrics: the names an operator scrapes, labels without ids or tokens, figures
that move with the traffic, and a WebSocket counted from open to close."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from api_world import Api, User
from prometheus_client.parser import text_string_to_metric_families

from server.access import AccessMiddleware
from server.metrics import Metrics, serve_worker_metrics
from server.proxies import TrustedProxies
from tests.support.live_server import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

NAMES = {
    "plaza_http_requests",
    "plaza_http_request_duration_seconds",
    "plaza_ws_connections",
    "plaza_ws_frames_sent",
    "plaza_outbox_backlog",
    "plaza_events_processed",
    "plaza_events_dead_lettered",
    "plaza_consumer_lag",
}


async def scrape(api: Api) -> Samples:
    r = await api.http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def families(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def requests(samples: Samples, method: str, route: str, status: int) -> float:
    return value(
        samples, "plaza_http_requests_total", method=method, route=route, status=str(status)
    )


async def test_metrics_need_no_token_and_have_every_name(api: Api) -> None:
    samples = await scrape(api)
    names = families(samples)
    for name in NAMES - {"plaza_http_requests", "plaza_http_request_duration_seconds"}:
        assert any(n.startswith(name) for n in names), name
    assert "process_resident_memory_bytes" in names
    schema = (await api.get("/schema/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_routes_are_labelled_by_template_never_by_id_or_token(api: Api) -> None:
    user = await api.user()
    other = await api.user()
    assert (await api.get(f"/users/{other.id}", user)).status_code == 200
    assert (await api.get(f"/users/{other.id}/posts", user)).status_code == 200
    assert (await api.http.get("/no/such/12345")).status_code == 404
    samples = await scrape(api)
    assert requests(samples, "GET", "/api/v1/users/{user_id}", 200) == 1
    assert requests(samples, "POST", "/api/v1/auth/register", 201) == 2
    assert requests(samples, "GET", "unmatched", 404) == 1
    assert (
        value(
            samples,
            "plaza_http_request_duration_seconds_count",
            method="GET",
            route="/api/v1/users/{user_id}",
        )
        == 1
    )
    label_values = {v for _, labels in samples for _, v in labels}
    for secret in (user.id, other.id, user.access_token, user.refresh_token, "12345"):
        assert not any(secret in v for v in label_values), secret
    # The scrape does not count itself.
    assert not any("/metrics" in v for v in label_values)


async def test_invented_methods_do_not_mint_labels(api: Api) -> None:
    r = await api.http.request("BREW", "/api/v1/health")
    assert r.status_code == 405
    samples = await scrape(api)
    # Routing refuses the verb before a route is chosen: no template to name.
    assert requests(samples, "other", "unmatched", 405) == 1


async def test_counters_move_with_the_traffic(api: Api) -> None:
    before = await scrape(api)
    author = await api.user()
    for _ in range(3):
        assert (await api.get("/health")).status_code == 200
    await api.create_post(author, "counted")
    await api.drain()
    after = await scrape(api)
    route = ("GET", "/api/v1/health", 200)
    assert requests(after, *route) - requests(before, *route) == 3
    for kind in ("feed", "notifications", "live"):
        processed = value(after, "plaza_events_processed_total", kind=kind)
        assert processed > value(before, "plaza_events_processed_total", kind=kind)
        assert value(after, "plaza_consumer_lag", group=kind) == 0
    # Drained: nothing left in the outbox.
    assert ("plaza_outbox_backlog", frozenset()) in after
    assert value(after, "plaza_outbox_backlog") == 0


async def test_the_backlog_counts_what_is_not_processed(api: Api) -> None:
    author = await api.user()
    await api.create_post(author)
    await api.drain()
    # As if no worker had processed anything yet (api_world's crash replay).
    await api.services.storage.db.execute(
        "UPDATE outbox SET completed_at = NULL, relay_epoch = NULL"
    )
    opened = await api.services.storage.outbox_reader.open_count()
    assert opened > 0
    assert value(await scrape(api), "plaza_outbox_backlog") == opened
    api.app.state.worker.wake()
    await api.drain()
    assert value(await scrape(api), "plaza_outbox_backlog") == 0


async def test_a_backlog_that_cannot_be_read_is_left_out(api: Api) -> None:
    class Frozen:
        async def open_count(self) -> int:
            await asyncio.sleep(60)
            return 0

    metrics: Metrics = api.app.state.metrics
    metrics.sources.outbox = Frozen()
    loop = asyncio.get_running_loop()
    started = loop.time()
    samples = await scrape(api)
    assert loop.time() - started < 3  # the probe's deadline, not the frozen dependency
    assert ("plaza_outbox_backlog", frozenset()) not in samples
    assert any(n.startswith("plaza_consumer_lag") for n in families(samples))


class AsgiSocket:
    """A WebSocket client speaking raw ASGI to the app (httpx's transport has none)."""

    def __init__(self, app: Callable[..., Awaitable[None]], headers: list[tuple[bytes, bytes]]):
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": "/api/v1/ws",
            "raw_path": b"/api/v1/ws",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), *headers],
            "client": ("10.0.0.1", 4321),
            "server": ("testserver", 80),
            "subprotocols": [],
        }
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.task: asyncio.Task[None] = asyncio.ensure_future(
            app(scope, self.inbox.get, self.outbox.put)
        )

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.outbox.get(), 5)

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        self.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(frame)})
        message = await self.next()
        assert message["type"] == "websocket.send", message
        reply: dict[str, Any] = json.loads(message["text"])
        return reply

    async def disconnect(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)


async def open_socket(api: Api, user: User) -> tuple[AsgiSocket, dict[str, Any]]:
    app: Callable[..., Awaitable[None]] = api.app
    socket = AsgiSocket(app, [(b"authorization", f"Bearer {user.access_token}".encode())])
    accept = await socket.next()
    assert accept["type"] == "websocket.accept", accept
    return socket, accept


async def test_a_socket_is_counted_from_open_to_close(api: Api) -> None:
    user = await api.user()
    before = await scrape(api)
    socket, accept = await open_socket(api, user)
    ids = [v for k, v in accept.get("headers", []) if k == b"x-request-id"]
    assert len(ids) == 1 and len(ids[0]) == 32
    reply = await socket.request({"id": 1, "op": "subscribe", "channel": "feed"})
    assert reply["id"] == 1
    during = await scrape(api)
    assert value(during, "plaza_ws_connections") == 1
    sent = value(during, "plaza_ws_frames_sent_total") - value(before, "plaza_ws_frames_sent_total")
    assert sent >= 1
    await socket.disconnect()
    assert value(await scrape(api), "plaza_ws_connections") == 0


async def test_frame_counting_needs_no_label_lookup() -> None:
    """The per-frame path: one bound counter call, whatever the socket sends."""
    metrics = Metrics()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(5):
            await send({"type": "websocket.send", "text": "x"})
        await send({"type": "websocket.close", "code": 1000})

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "websocket.connect"}

    middleware = AccessMiddleware(app, metrics, TrustedProxies())
    await middleware({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    assert metrics.registry.get_sample_value("plaza_ws_frames_sent_total") == 5
    assert metrics.registry.get_sample_value("plaza_ws_connections") == 0
    assert [m["type"] for m in sent].count("websocket.send") == 5


async def test_a_worker_serves_its_own_event_counts(api: Api) -> None:
    author = await api.user()
    await api.create_post(author)
    await api.drain()
    worker = api.app.state.worker
    port = free_port()
    stop = serve_worker_metrics(worker, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        stop()
    assert r.status_code == 200
    samples = {
        (s.name, s.labels.get("kind")): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    for group in worker.groups:
        assert samples[("plaza_events_processed_total", str(group.kind))] == group.handled > 0
    assert ("plaza_ws_connections", None) not in samples  # a worker holds no sockets


async def test_a_refused_socket_is_never_counted_open(api: Api) -> None:
    app: Callable[..., Awaitable[None]] = api.app
    socket = AsgiSocket(app, [(b"origin", b"https://elsewhere.example")])
    refused = await socket.next()
    assert refused["type"] == "websocket.close"
    await asyncio.wait_for(socket.task, 5)
    samples = await scrape(api)
    assert value(samples, "plaza_ws_connections") == 0
    assert value(samples, "plaza_ws_frames_sent_total") == 0
