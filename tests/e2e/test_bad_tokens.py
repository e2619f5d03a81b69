"""The bad-token corpus against a real `plaza serve`: every token that must not work is
refused on REST (401 `invalid_token`) and over the WebSocket, by header (closed 4401
before any event) and by frame (an error reply; the socket stays unauthenticated and
gets no event), while a good token keeps working."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.support.clients import PASSWORD, Ws
from tests.support.live_server import LiveServer, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "corpus-" + "q" * 57  # 64 bytes: HS512 accepts it without a warning


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"PLAZA_SECRET_KEY": SECRET, "PLAZA_RATE_AUTH_PER_IP_PER_MINUTE": "100000"}
    with running_server(tmp_path_factory.mktemp("corpus"), env) as live:
        yield live


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def forge(claims: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def login(http: httpx.AsyncClient, api: str, name: str, password: str = PASSWORD) -> Any:
    r = await http.post(f"{api}/auth/login", json={"login": name, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def corpus(http: httpx.AsyncClient, api: str) -> tuple[dict[str, str], str]:
    """(name -> bad token, a good token of another user)."""
    name = f"c_{uuid.uuid4().hex[:8]}"
    r = await http.post(
        f"{api}/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    first = await login(http, api, name)
    good = first["access_token"]
    base = claims_of(good)
    now = int(time.time())
    bad: dict[str, str] = {
        "alg none": unsigned(base),
        "wrong key": forge(base, key="w" * 64),
        "HS512 with the right key": forge(base, algorithm="HS512"),
        "expired": forge({**base, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not yet valid": forge({**base, "iat": now + 3600, "nbf": now + 3600, "exp": now + 7200}),
        "wrong audience": forge({**base, "aud": "someone-else"}),
        "wrong issuer": forge({**base, "iss": "someone-else"}),
        "deleted or unknown user": forge({**base, "sub": "9" * 18}),
        "refresh token as access": first["refresh_token"],
        "garbage": "not.a.jwt",
        "empty signature": good.rsplit(".", 1)[0] + ".",
    }
    for claim in ("sub", "exp", "iat", "iss", "aud", "ver", "sid", "jti"):
        bad[f"missing {claim}"] = forge({k: v for k, v in base.items() if k != claim})
    # A logged-out login, then tokens from before a password change and before logout
    # everywhere.
    out = await login(http, api, name)
    r = await http.post(f"{api}/auth/logout", json={"refresh_token": out["refresh_token"]})
    assert r.status_code == 204
    bad["logged-out login"] = out["access_token"]
    before_change = await login(http, api, name)
    new_password = PASSWORD + " changed"
    r = await http.post(
        f"{api}/auth/password",
        headers={"Authorization": f"Bearer {before_change['access_token']}"},
        json={"old_password": PASSWORD, "new_password": new_password},
    )
    assert r.status_code == 204, r.text
    bad["before a password change"] = before_change["access_token"]
    bad["first login, before the password change"] = good
    before_all = await login(http, api, name, new_password)
    r = await http.post(
        f"{api}/auth/logout_all",
        headers={"Authorization": f"Bearer {before_all['access_token']}"},
    )
    assert r.status_code == 204
    bad["before logout everywhere"] = before_all["access_token"]

    other = f"o_{uuid.uuid4().hex[:8]}"
    r = await http.post(
        f"{api}/auth/register",
        json={"username": other, "email": f"{other}@example.com", "password": PASSWORD},
    )
    assert r.status_code == 201
    return bad, (await login(http, api, other))["access_token"]


async def test_every_bad_token_is_refused_on_rest_and_over_the_websocket(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        bad, good = await corpus(http, server.api)
        assert len(bad) == 23
        # The good token works, so each refusal below is the token's doing.
        r = await http.get(f"{server.api}/users/me", headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 200
        async with await Ws.connect(server.ws_url, good) as ws:
            await ws.ok("subscribe", channel="public")
            for name, token in bad.items():
                r = await http.get(
                    f"{server.api}/users/me", headers={"Authorization": f"Bearer {token}"}
                )
                # On REST an expired token says so, which tells a client to refresh.
                code = "token_expired" if name == "expired" else "invalid_token"
                assert r.status_code == 401, (name, r.status_code, r.text)
                assert r.json()["error"]["code"] == code, name

                by_header = await Ws.connect(server.ws_url, token)
                assert await by_header.closed_with() == 4401, name
                assert not by_header.pushes, name

                async with await Ws.connect(server.ws_url) as by_frame:
                    reply = await by_frame.call("auth", token=token)
                    assert reply["ok"] is False, name
                    # Over the socket every refusal is invalid_token (docs/protocol.md).
                    assert reply["error"]["code"] == "invalid_token", (name, reply)
                    reply = await by_frame.call("subscribe", channel="public")
                    assert reply["ok"] is False, name
                    assert reply["error"]["code"] == "unauthenticated", (name, reply)
                    # Something happens on `public` meanwhile: only the good socket hears it.
                    r = await http.post(
                        f"{server.api}/posts",
                        headers={"Authorization": f"Bearer {good}"},
                        json={"content": f"while {name} knocks"},
                    )
                    assert r.status_code == 201
                    push = await ws.push(timeout=5)
                    assert push["event"]["data"]["content"] == f"while {name} knocks"
                    assert not by_frame.pushes, name
