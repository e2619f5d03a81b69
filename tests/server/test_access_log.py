"""Access lines, request ids and the log formats: one line per request with its route,
status, duration and id; X-Request-ID on every response, believed only from a trusted
proxy; the id on every line of the request; never a token or a query string."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from api_world import Api, make_settings, running_api

from server.logs import handler
from server.proxies import client_ip, is_trusted, parse_trusted_proxies
from server.settings import ConfigError, Settings

HEX_ID = re.compile(r"[0-9a-f]{32}")
# running_api's ASGI transport connects from this address.
PEER = "10.0.0.1"


@contextmanager
def captured(fmt: str) -> Iterator[io.StringIO]:
    """The process's own handler (server.logs), writing into a string."""
    stream = io.StringIO()
    root = logging.getLogger()
    out = handler(fmt, stream)
    level = root.level
    root.addHandler(out)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(out)
        root.setLevel(level)


def access_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["logger"] == "plaza.access"]


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_every_response_carries_a_generated_request_id(api: Api) -> None:
    first = await api.get("/health")
    second = await api.http.get("/no/such/page")
    assert second.status_code == 404
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(HEX_ID.fullmatch(i) for i in ids)
    assert ids[0] != ids[1]


async def test_a_request_id_from_an_untrusted_peer_is_replaced(api: Api) -> None:
    r = await api.get("/health", headers={"X-Request-ID": "chosen-by-the-client"})
    assert r.headers["x-request-id"] != "chosen-by-the-client"
    assert HEX_ID.fullmatch(r.headers["x-request-id"])


async def test_a_trusted_proxy_passes_its_request_id_on(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'plaza.db'}",
        trusted_proxies=parse_trusted_proxies("10.0.0.0/24"),
    )
    async with running_api(settings) as api:
        with captured("json") as stream:
            r = await api.get("/health", headers={"X-Request-ID": "edge-4f2a.17"})
            forged = await api.get("/health", headers={"X-Request-ID": "bad id\nINFO forged"})
        assert r.headers["x-request-id"] == "edge-4f2a.17"
        # Even a trusted proxy cannot put anything but an id into the logs.
        assert HEX_ID.fullmatch(forged.headers["x-request-id"])
    lines = access_lines(json_lines(stream))
    assert [line["request_id"] for line in lines] == [
        "edge-4f2a.17",
        forged.headers["x-request-id"],
    ]


async def test_the_access_line_has_route_status_duration_and_id(api: Api) -> None:
    user = await api.user()
    with captured("json") as stream:
        r = await api.get(f"/users/{user.id}", user)
    assert r.status_code == 200
    (line,) = access_lines(json_lines(stream))
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/users/{user_id}"
    assert line["path"] == f"/api/v1/users/{user.id}"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == r.headers["x-request-id"]
    assert line["client"] == PEER
    assert line["message"].startswith(f"GET /api/v1/users/{user.id} 200 ")


async def test_text_lines_are_readable_and_carry_the_id(api: Api) -> None:
    with captured("text") as stream:
        r = await api.get("/health")
    (line,) = [text for text in stream.getvalue().splitlines() if "plaza.access" in text]
    assert f"INFO plaza.access [{r.headers['x-request-id']}]: GET /api/v1/health 200 " in line
    assert line.endswith(" ms")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


async def test_the_id_is_on_every_plaza_line_of_the_request(api: Api) -> None:
    async def down() -> None:
        raise ConnectionError("refused")

    api.services.readiness["probe"] = down
    with captured("json") as stream:
        r = await api.get("/ready")
        await api.get("/health")
    assert r.status_code == 503
    rid = r.headers["x-request-id"]
    records = json_lines(stream)
    warning = next(x for x in records if x["logger"] == "plaza.server")
    assert "readiness check probe failed" in warning["message"]
    assert warning["request_id"] == rid
    of_request = [x for x in records if x["request_id"] == rid]
    assert {x["logger"] for x in of_request} == {"plaza.server", "plaza.access"}
    # Lines outside any request say so.
    logging.getLogger("plaza.test").warning("between requests")
    assert json_lines(stream)[-1]["request_id"] == "-"


async def test_tokens_and_query_strings_never_reach_the_access_log(api: Api) -> None:
    user = await api.user()
    with captured("json") as stream, captured("text") as text:
        await api.get("/users/me?access_token=s3cr3t-in-url", user)
        await api.post("/auth/refresh", json={"refresh_token": user.refresh_token})
        await api.post("/auth/login", json={"login": user.username, "password": "wrong"})
    # The server's lines (the test's own HTTP client logs its URLs, query and all).
    ours = [line for line in stream.getvalue().splitlines() if '"logger": "plaza.' in line]
    ours += [line for line in text.getvalue().splitlines() if " plaza." in line]
    everything = "\n".join(ours)
    assert len(access_lines(json_lines(stream))) == 3
    for secret in (user.access_token, user.refresh_token, "s3cr3t-in-url", "wrong", "Bearer"):
        assert secret not in everything, secret


def test_the_log_format_is_validated() -> None:
    base = {"PLAZA_SECRET_KEY": "k" * 40}
    assert Settings.from_env(base).log_format == "text"
    assert Settings.from_env({**base, "PLAZA_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="PLAZA_LOG_FORMAT: must be text or json"):
        Settings.from_env({**base, "PLAZA_LOG_FORMAT": "xml"})


def test_trusted_proxies_are_validated() -> None:
    base = {"PLAZA_SECRET_KEY": "k" * 40}
    assert not Settings.from_env(base).trusted_proxies
    proxies = Settings.from_env({**base, "PLAZA_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16, ::1"})
    assert "192.168.4.5" in proxies.trusted_proxies and "::1" in proxies.trusted_proxies
    assert "10.0.0.2" not in proxies.trusted_proxies
    with pytest.raises(ConfigError, match="PLAZA_TRUSTED_PROXIES: 'nginx' is not an IP"):
        Settings.from_env({**base, "PLAZA_TRUSTED_PROXIES": "10.0.0.1,nginx"})


def test_metrics_port_is_validated() -> None:
    base = {"PLAZA_SECRET_KEY": "k" * 40}
    assert Settings.from_env(base).metrics_port is None
    assert Settings.from_env({**base, "PLAZA_METRICS_PORT": "9101"}).metrics_port == 9101
    with pytest.raises(ConfigError, match="PLAZA_METRICS_PORT"):
        Settings.from_env({**base, "PLAZA_METRICS_PORT": "0"})


def test_only_a_trusted_proxy_speaks_for_the_client() -> None:
    trusted = parse_trusted_proxies("10.0.0.0/8")

    def scope(peer: str, forwarded: str | None = None) -> dict[str, Any]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 1234), "headers": headers}

    assert not is_trusted(scope("10.1.2.3"), parse_trusted_proxies(None))
    assert is_trusted(scope("10.1.2.3"), trusted)
    assert client_ip(scope("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"
    assert client_ip(scope("10.0.0.5"), trusted) == "10.0.0.5"
    assert client_ip(scope("10.0.0.5", "198.51.100.7"), trusted) == "198.51.100.7"
    # What the client wrote left of the first untrusted hop is its own claim.
    assert client_ip(scope("10.0.0.5", "1.1.1.1, 198.51.100.7, 10.0.0.9"), trusted) == (
        "198.51.100.7"
    )
    assert client_ip(scope("10.0.0.5", "not-an-ip"), trusted) == "10.0.0.5"
    assert client_ip({"headers": []}, trusted) is None


async def test_a_path_cannot_forge_a_log_line(api: Api) -> None:
    with captured("text") as stream:
        r = await api.http.get("/api/v1/users/1%0A2026-01-01 INFO plaza.access [x]: forged")
    assert r.status_code in (400, 404, 422)
    # Lines logged by plaza.* (the test's HTTP client logs the URL too).
    ours = [x for x in stream.getvalue().splitlines() if re.match(r"\S+ \S+ \w+ plaza\.", x)]
    assert len(ours) == 1 and "%0A" in ours[0]


async def test_a_socket_behind_a_trusted_proxy_is_logged_with_the_client_address(
    tmp_path: Path,
) -> None:
    """The socket's open line names the client a trusted proxy forwarded, although the
    endpoint lets the upgrade's other headers go before it accepts."""
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'plaza.db'}",
        trusted_proxies=parse_trusted_proxies("10.0.0.0/24"),
    )
    async with running_api(settings) as api:
        inbox: list[dict[str, Any]] = [{"type": "websocket.connect"}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            while not inbox:
                await asyncio.sleep(0.01)
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "websocket.accept":
                inbox.append({"type": "websocket.disconnect", "code": 1000})

        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": "/api/v1/ws",
            "raw_path": b"/api/v1/ws",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"x-forwarded-for", b"203.0.113.9")],
            "client": (PEER, 4321),
            "server": ("testserver", 80),
            "subprotocols": [],
            "state": {},
            "extensions": {},
        }
        with captured("json") as stream:
            await asyncio.wait_for(
                api.app(cast(Any, scope), cast(Any, receive), cast(Any, send)), 5.0
            )
    assert sent[0]["type"] == "websocket.accept"
    (opened,) = [r for r in json_lines(stream) if r["message"].startswith("websocket open")]
    assert opened["client"] == "203.0.113.9"
