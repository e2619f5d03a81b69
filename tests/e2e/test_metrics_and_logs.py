"""The operator's view of a real `plaza serve`: /metrics follows a WebSocket and a post,
and the process writes one access line per request, as JSON with PLAZA_LOG_FORMAT=json."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import TEST_ENV
from tests.support.clients import Ws, make_user
from tests.support.fleet import WorkerProcess, running_fleet
from tests.support.live_server import LiveServer, free_port, running_server

pytestmark = pytest.mark.e2e


async def scrape(http: httpx.AsyncClient, server: LiveServer) -> dict[str, float]:
    """Unlabelled samples and the totals of labelled ones, by sample name."""
    r = await http.get(f"{server.base_url}/metrics")
    assert r.status_code == 200
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_metrics_follow_a_socket_and_a_post(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    author = await make_user(http, server.api, "metrics_author")
    fan = await make_user(http, server.api, "metrics_fan")
    r = await http.post(f"{server.api}/users/{author.id}/follow", headers=fan.auth)
    assert r.status_code in (200, 201, 204), r.text
    idle = await scrape(http, server)
    assert idle["plaza_ws_connections"] == 0
    async with await Ws.connect(server.ws_url, fan.token) as ws:
        await ws.ok("subscribe", channel="feed")
        connected = await scrape(http, server)
        assert connected["plaza_ws_connections"] == 1
        r = await http.post(f"{server.api}/posts", json={"content": "watched"}, headers=author.auth)
        assert r.status_code == 201
        push = await ws.push()
        assert push["event"]["type"] == "post.created"
        after = await scrape(http, server)
        assert after["plaza_ws_frames_sent_total"] > connected["plaza_ws_frames_sent_total"]
        assert after["plaza_http_requests_total"] > connected["plaza_http_requests_total"]

        async def processed() -> bool:
            now = await scrape(http, server)
            return bool(now["plaza_events_processed_total"] > idle["plaza_events_processed_total"])

        await eventually(processed)
    # The close is counted once the server has seen it.

    async def closed() -> bool:
        return (await scrape(http, server))["plaza_ws_connections"] == 0

    await eventually(closed)
    log = server.log()
    assert "plaza.access" in log and "GET /metrics" not in log
    assert "websocket open" in log and "websocket closed 1000" in log


async def test_json_logs_with_a_request_id_per_line(tmp_path: Path) -> None:
    env = {**TEST_ENV, "PLAZA_LOG_FORMAT": "json"}
    with running_server(tmp_path, env) as server:
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"{server.api}/health?token=not-for-logs")
        assert r.status_code == 200
        rid = r.headers["x-request-id"]
        server.stop()
        lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    loggers = {line["logger"] for line in lines}
    # uvicorn's own lines share the format; its access log stays off.
    assert "uvicorn.error" in loggers and "uvicorn.access" not in loggers
    # The start-up health polls have lines of their own, each with its own id.
    (access,) = [line for line in lines if line.get("request_id") == rid]
    assert access["logger"] == "plaza.access"
    assert access["route"] == "/api/v1/health" and access["status"] == 200
    assert "not-for-logs" not in server.log()


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_fleet_shows_backlog_lag_and_worker_counts(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    with running_fleet(tmp_path, postgres_url, redis_url, servers=1, workers=0) as fleet:
        port = free_port()
        worker = WorkerProcess(fleet.workdir, {**fleet.env, "PLAZA_METRICS_PORT": str(port)}, "m")
        fleet.workers.append(worker)  # stopped with the fleet
        worker.start()
        (server,) = fleet.servers
        async with httpx.AsyncClient(timeout=10) as http:
            author = await make_user(http, server.api, "fleet_author")
            r = await http.post(f"{server.api}/posts", json={"content": "x"}, headers=author.auth)
            assert r.status_code == 201

            async def worker_processed() -> bool:
                r = await http.get(f"http://127.0.0.1:{port}/metrics")
                return 'plaza_events_processed_total{kind="feed"} 1.0' in r.text

            await eventually(worker_processed, timeout=15)

            async def caught_up() -> bool:
                now = await scrape(http, server)
                return now.get("plaza_outbox_backlog") == 0 and now["plaza_consumer_lag"] == 0

            await eventually(caught_up, timeout=15)
            web = (await http.get(f"{server.base_url}/metrics")).text
        # The lag is read from Redis, per group; the web process runs no consumers.
        for group in ("feed", "notifications", "live"):
            assert f'plaza_consumer_lag{{group="{group}"}}' in web
        assert "plaza_events_processed_total" not in web
        assert f"worker metrics on http://127.0.0.1:{port}/metrics" in worker.log()
