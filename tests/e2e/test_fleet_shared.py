"""What the instances of a fleet share: the per-user socket limit, logout closing a user's
sockets everywhere, and the rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import PASSWORD, Ws, make_user
from tests.support.fleet import Fleet, running_fleet

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Fleet]:
    extra = {
        "PLAZA_WS_MAX_SOCKETS_PER_USER": "3",
        "PLAZA_RATE_WRITES_PER_USER_PER_MINUTE": "5",
    }
    with running_fleet(tmp_path, postgres_url, redis_url, workers=1, extra_env=extra) as f:
        yield f


async def test_the_socket_limit_holds_across_instances(fleet: Fleet) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=10) as http:
        user = await make_user(http, a.api, "many")
        first = [await Ws.connect(a.ws_url, user.token) for _ in range(2)]
        third = await Ws.connect(b.ws_url, user.token)
        for ws in (*first, third):
            await ws.ok("ping")
        over = await Ws.connect(b.ws_url, user.token)
        assert await over.closed_with() == 4029
        await first[0].close()
        # The freed slot is usable on the other instance.
        for _ in range(50):
            again = await Ws.connect(b.ws_url, user.token)
            reply = await again.call("ping")
            if reply.get("ok"):
                break
            await again.close()
        assert reply["ok"] is True
        for ws in (first[1], third, again):
            await ws.close()


async def test_logout_closes_that_logins_sockets_on_every_instance(fleet: Fleet) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=10) as http:
        user = await make_user(http, a.api, "leaver")
        r = await http.post(
            f"{a.api}/auth/login", json={"login": user.username, "password": PASSWORD}
        )
        other_login = r.json()
        on_a = await Ws.connect(a.ws_url, user.token)
        on_b = await Ws.connect(b.ws_url, user.token)
        kept = await Ws.connect(b.ws_url, other_login["access_token"])
        for ws in (on_a, on_b, kept):
            await ws.ok("ping")
        r = await http.post(f"{a.api}/auth/logout", json={"refresh_token": user.refresh})
        assert r.status_code == 204
        assert await on_a.closed_with() == 4401
        assert await on_b.closed_with() == 4401  # the other instance's socket too
        # The logged-out login's access token is refused at once on both instances, REST
        # and WebSocket alike; another login of the same user is not affected.
        for server in (a, b):
            r = await http.get(
                f"{server.api}/users/me", headers={"Authorization": f"Bearer {user.token}"}
            )
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        refused = await Ws.connect(b.ws_url, user.token)
        assert await refused.closed_with() == 4401
        r = await http.get(
            f"{b.api}/users/me", headers={"Authorization": f"Bearer {other_login['access_token']}"}
        )
        assert r.status_code == 200
        await kept.ok("ping")
        auth = {"Authorization": f"Bearer {other_login['access_token']}"}
        r = await http.post(f"{b.api}/auth/logout_all", headers=auth)
        assert r.status_code == 204
        assert await kept.closed_with() == 4401


async def test_the_write_limit_is_one_budget_across_instances(fleet: Fleet) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=10) as http:
        user = await make_user(http, a.api, "writer")
        codes = []
        for n in range(6):
            server = (a, b)[n % 2]
            r = await http.post(f"{server.api}/posts", json={"content": f"{n}"}, headers=user.auth)
            codes.append(r.status_code)
        assert codes == [201] * 5 + [429]
        assert r.json()["error"]["code"] == "rate_limited" and "retry-after" in r.headers
