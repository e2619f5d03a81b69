"""The OpenAPI schema is the contract: focused assertions on it, then schemathesis fuzzing
a real `plaza serve` against it with every check, as an authenticated user.

The fuzzing run is bounded (10 examples per operation, one worker, a fixed seed; about
20 s here) and must end with zero failures and zero server errors.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import contract_auth
import httpx
import pytest
from api_world import make_settings
from contract_auth import API_ENV, LOGIN_ENV, PASSWORD_ENV
from litestar.routes import HTTPRoute

from domain.ids import ID_PATTERN, parse_id
from domain.pagination import MAX_LIMIT
from server.app import create_app
from tests.support.limits import UNLIMITED_ENV
from tests.support.live_server import LiveServer, running_server

PASSWORD = "correct horse battery"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
OPTIONAL: list[dict[str, list[str]]] = [{}, {"bearer": []}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("contract"), UNLIMITED_ENV) as live:
        yield live


@pytest.fixture(scope="module")
def schema(server: LiveServer) -> dict[str, Any]:
    response = httpx.get(f"{server.api}/schema/openapi.json", timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][f"/api/v1{path}"][method]
    return found


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_no_document_wide_security(schema: dict[str, Any]) -> None:
    # Each operation says who may call it; nothing is inherited by accident.
    assert "security" not in schema
    assert all("security" in op for _, _, op in operations(schema))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/auth/register"),
        ("post", "/auth/login"),
        ("post", "/auth/refresh"),
        ("post", "/auth/logout"),
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/media/{media_id}"),
    ],
)
def test_public_operations_need_no_token(schema: dict[str, Any], method: str, path: str) -> None:
    assert operation(schema, method, path)["security"] in ([], [{}])


@pytest.mark.parametrize(
    "path",
    [
        "/users/{user_id}",
        "/users/{user_id}/posts",
        "/users/{user_id}/followers",
        "/users/{user_id}/following",
        "/posts/{post_id}",
        "/posts/{post_id}/likes",
        "/posts/{post_id}/comments",
        "/search",
    ],
)
def test_public_reads_take_an_optional_token(schema: dict[str, Any], path: str) -> None:
    op = operation(schema, "get", path)
    assert op["security"] == OPTIONAL
    assert "401" in op["responses"]  # a bad token is refused, never ignored


def test_everything_else_needs_a_token(schema: dict[str, Any]) -> None:
    for method, path, op in operations(schema):
        if op["security"] not in ([{}], OPTIONAL):
            assert op["security"] == BEARER, (method, path)
            assert "401" in op["responses"], (method, path)


def test_every_error_response_is_the_envelope(schema: dict[str, Any]) -> None:
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    body = schema["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "details"}
    assert set(body["required"]) == {"code", "message"}
    for method, path, op in operations(schema):
        for status, response in op["responses"].items():
            if int(status) < 400 or path.endswith("/ready"):
                continue
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorEnvelope", (method, path, status)


def test_ids_are_decimal_strings_with_their_pattern(schema: dict[str, Any]) -> None:
    param = operation(schema, "get", "/posts/{post_id}")["parameters"][0]
    assert param["schema"] == {"type": "string", "pattern": ID_PATTERN, "description": "A post id"}
    pattern = re.compile(ID_PATTERN)
    for text in ["1", "42", "9223372036854775807", "0", "01", "-1", "9223372036854775808", "x"]:
        try:
            parse_id(text)
            accepted = True
        except Exception:
            accepted = False
        assert bool(pattern.fullmatch(text)) == accepted, text


def test_limit_is_an_integer_with_its_range(schema: dict[str, Any]) -> None:
    params = {p["name"]: p for p in operation(schema, "get", "/feed")["parameters"]}
    assert params["limit"]["schema"]["type"] == "integer"
    assert params["limit"]["schema"]["minimum"] == 1
    # Larger values are clamped, not refused, so there is no maximum to state.
    assert str(MAX_LIMIT) in params["limit"]["description"]


def test_statuses_and_types_of_note(schema: dict[str, Any]) -> None:
    create = operation(schema, "post", "/posts")["responses"]
    assert {"200", "201", "401", "413", "422", "429"} <= set(create)  # 200: a replayed key
    assert "409" in operation(schema, "post", "/auth/register")["responses"]
    assert "415" in operation(schema, "post", "/media")["responses"]
    image = operation(schema, "get", "/media/{media_id}")["responses"]["200"]["content"]
    assert set(image) == {"image/gif", "image/jpeg", "image/png", "image/webp"}
    search = operation(schema, "get", "/search")
    ok = search["responses"]["200"]["content"]["application/json"]["schema"]
    assert "oneOf" in json.dumps(ok) and "UserView" in json.dumps(ok)
    q = next(p for p in search["parameters"] if p["name"] == "q")
    assert q["required"] is True and q["schema"]["maxLength"] == 100
    read = operation(schema, "post", "/notifications/read")
    assert read["requestBody"]["required"] is False
    post_in = schema["components"]["schemas"]["PostIn"]
    assert post_in["additionalProperties"] is False
    assert post_in["properties"]["content"]["maxLength"] == 500


def test_docs_page_loads_nothing_from_other_hosts(server: LiveServer) -> None:
    page = httpx.get(f"{server.api}/schema", timeout=10)
    assert page.status_code == 200
    policy = dict(
        (d.split()[0], d.split()[1:]) for d in page.headers["content-security-policy"].split("; ")
    )
    assert policy["default-src"] == ["'none'"] and policy["script-src"] == ["'self'"]
    assert all("http" not in v and "*" not in v for vs in policy.values() for v in vs)
    assert "<script>" not in page.text  # no inline script
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    assert urls and all(u.startswith("/api/v1/schema/assets/") for u in urls), urls
    for url in urls:
        asset = httpx.get(f"{server.base_url}{url}", timeout=10)
        assert asset.status_code == 200, url
    missing = httpx.get(f"{server.api}/schema/assets/../../../etc/passwd", timeout=10)
    assert missing.status_code == 404


# The exceptions the run admits, each with its reason (rules no JSON Schema can state).
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.slow
def test_schemathesis_finds_nothing(server: LiveServer, tmp_path: Path) -> None:
    registered = httpx.post(
        f"{server.api}/auth/register",
        json={"username": "fuzzer", "email": "fuzzer@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert registered.status_code == 201
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": contract_auth.__name__,
        API_ENV: server.api,
        LOGIN_ENV: "fuzzer",
        PASSWORD_ENV: PASSWORD,
        "PYTHONPATH": os.pathsep.join([str(Path.cwd()), str(Path(contract_auth.__file__).parent)]),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            f"--config-file={CONFIG}",
            "run",
            f"{server.api}/schema/openapi.json",
            "--checks=all",
            "--max-examples=10",
            "--seed=1",
            "--workers=1",
            "--generation-database=none",
            "--report=json",
            f"--report-dir={tmp_path}",
            "--no-color",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    reports = list(tmp_path.glob("*.json"))
    assert reports, run.stdout + run.stderr
    report = json.loads(reports[0].read_text())
    figures = {
        "operations": report["operations"]["tested"],
        "test cases": report["test_cases"]["generated"],
        "unique failures": report["test_cases"]["unique_failures"],
        "errors": len(report["errors"]),
    }
    print("schemathesis:", figures)
    assert run.returncode == 0, run.stdout[-20000:]
    assert figures["unique failures"] == 0 and figures["errors"] == 0
    assert "Traceback" not in server.log()


def test_options_lists_every_method_of_the_path(server: LiveServer) -> None:
    # Regression (found by schemathesis): Litestar 2 listed only the first handler's.
    for path, methods in [
        ("/posts/1", "DELETE, GET, OPTIONS"),
        ("/posts/1/likes", "DELETE, GET, OPTIONS, POST"),
        ("/users/1", "GET, OPTIONS, PATCH, PUT"),
        ("/users/1/follow", "DELETE, OPTIONS, POST"),
    ]:
        response = httpx.options(f"{server.api}{path}", timeout=10)
        assert response.status_code == 204
        assert response.headers["allow"] == methods, path


def test_declared_security_matches_the_auth_dependency(tmp_path: Path) -> None:
    # The schema's security comes from each handler's `security=`; the server's comes from
    # the dependency it asks for. They must agree, for every handler added later too.
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'plaza.db'}"))
    checked = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            names = set(handler.parsed_fn_signature.parameters)
            if names & {"principal", "actor"}:
                expected = BEARER
            elif "viewer" in names:
                expected = OPTIONAL
            else:
                expected = [{}]
            assert list(handler.resolve_security()) == expected, (route.path, handler)
            checked += 1
    assert checked >= 35
