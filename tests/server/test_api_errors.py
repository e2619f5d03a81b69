"""Bad input anywhere is a 4xx with the one error shape, never a 500."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from api_world import Api, assert_error, make_settings, running_api
from litestar import Router, get

from domain.errors import Unavailable

ID_PARAM = re.compile(r"\{(\w+):str\}")


def api_routes(api: Api) -> Iterator[tuple[str, str]]:
    for route in api.app.routes:
        if not route.path.startswith("/api/v1/") or "/schema" in route.path:
            continue
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            yield method, route.path.removeprefix("/api/v1")


async def test_every_route_survives_garbage(api: Api) -> None:
    alice = await api.user()
    routes = list(api_routes(api))
    assert len(routes) >= 30
    bodies: Sequence[bytes] = (
        b"{bad json",
        b"[1, 2]",
        b'{"content": 5}',
        b"null",
        b"",
        b"\xff\xfe",
    )
    for method, template in routes:
        for raw_id in ("abc", "-1", "0", "1.5", "99999999999999999999", "%00"):
            path = ID_PARAM.sub(raw_id, template)
            for body in bodies if method in ("POST", "PUT", "PATCH") else (b"",):
                r = await api.request(
                    method,
                    path,
                    content=body,
                    headers={**alice.headers, "Content-Type": "application/json"},
                )
                assert r.status_code < 500, (method, path, body, r.text)
                if r.status_code >= 400:
                    assert_error(r, r.status_code)


@pytest.mark.parametrize("raw_id", ["abc", "-5", "0", "1e3", "12345678901234567890", " 7"])
async def test_non_numeric_ids_are_422(api: Api, raw_id: str) -> None:
    alice = await api.user()
    for path in (f"/users/{raw_id}", f"/posts/{raw_id}", f"/users/{raw_id}/followers"):
        assert_error(await api.get(path, alice), 422, "validation_error")
    assert_error(await api.post(f"/posts/{raw_id}/likes", alice), 422, "validation_error")


async def test_malformed_json_is_400_and_wrong_shape_is_422(api: Api) -> None:
    alice = await api.user()
    r = await api.post("/posts", alice, content=b'{"content": "x"', headers=_json())
    assert_error(r, 400, "invalid_json")
    r = await api.post("/auth/login", content=b"not json", headers=_json())
    assert_error(r, 400, "invalid_json")
    r = await api.post("/posts", alice, json={"content": ["a"]})
    assert_error(r, 422, "validation_error")
    assert r.json()["error"]["details"][0]["field"] == "content"
    r = await api.post("/auth/register", json={"username": "x"})
    assert_error(r, 422, "validation_error")
    r = await api.post("/posts", alice, content=b"", headers=_json())
    assert_error(r, 422, "validation_error")


@pytest.mark.parametrize(
    "query", ["limit=abc", "limit=0", "limit=-3", "max_id=x", "since_id=-1", "min_id=1.5"]
)
async def test_bad_paging_parameters_are_422(api: Api, query: str) -> None:
    alice = await api.user()
    assert_error(await api.get(f"/feed?{query}", alice), 422, "validation_error")
    assert_error(await api.get(f"/users/{alice.id}/posts?{query}"), 422, "validation_error")


async def test_oversized_body_is_413(api: Api) -> None:
    alice = await api.user()
    body = b'{"content": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    assert_error(await api.post("/posts", alice, content=body, headers=_json()), 413)
    assert_error(await api.post("/auth/login", content=body, headers=_json()), 413)


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    r = await api.get("/nothing/here")
    assert_error(r, 404, "not_found")
    r = await api.http.get("/favicon.ico")
    assert_error(r, 404, "not_found")
    r = await api.request("PUT", "/feed")
    assert_error(r, 405, "method_not_allowed")


async def test_security_headers_everywhere(api: Api) -> None:
    for r in (await api.get("/health"), await api.get("/nope"), await api.get("/feed")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in r.headers["content-security-policy"]


async def test_health_ready_and_schema(api: Api) -> None:
    r = await api.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = await api.get("/ready")
    assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "media": "ok"}

    async def down() -> None:
        raise ConnectionError("database is gone")

    api.services.readiness["database"] = down
    r = await api.get("/ready")
    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "media": "ok"},
    }
    assert r.headers["Retry-After"]

    r = await api.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/posts/{post_id}/likes" in paths and "/api/v1/auth/login" in paths
    assert (await api.get("/schema/swagger")).status_code == 200


@get("/boom")
async def boom() -> None:
    raise RuntimeError("secret-token-abc in a bug")


@get("/busy")
async def busy() -> None:
    raise Unavailable("the database is restarting", retry_after=2.5)


async def _ok() -> None:
    return None


async def test_unexpected_errors_are_a_bare_500_and_logged_without_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    async with running_api(settings) as api:
        # Routes that fail like a bug, and like a dependency that is down, would.
        api.app.register(Router(path="/api/v1", route_handlers=[boom, busy]))
        api.services.readiness["boom"] = _ok
        with caplog.at_level(logging.ERROR, logger="plaza.server"):
            r = await api.get("/boom?access_token=leaky", headers={"Authorization": "Bearer t0k"})
        assert_error(r, 500, "internal_error")
        assert "secret" not in r.text
        logged = [rec.getMessage() for rec in caplog.records if rec.name == "plaza.server"]
        assert logged == ["unhandled RuntimeError on GET /api/v1/boom"]
        assert "leaky" not in caplog.text and "t0k" not in caplog.text
        checks = (await api.get("/ready")).json()["checks"]
        assert checks == {"database": "ok", "media": "ok", "boom": "ok"}
        r = await api.get("/busy")
        assert_error(r, 503, "unavailable")
        assert r.headers["Retry-After"] == "3"


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


@pytest.mark.parametrize("depth", [100, 1000, 100_000])
async def test_deeply_nested_json_is_an_ordinary_bad_request(api: Api, depth: int) -> None:
    """Nesting is input like any other: a 4xx with the envelope, never a 500 (msgspec and
    Litestar recurse per level)."""
    user = await api.user()
    nested = "[" * depth + "]" * depth
    for body in (nested, '{"content": ' + nested + "}"):
        r = await api.post(
            "/posts", user, content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code in (400, 422), (depth, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] in ("invalid_json", "validation_error")
