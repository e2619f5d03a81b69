"""POST /auth/*: registration, login, refresh rotation and reuse, logout, password."""

from __future__ import annotations

import statistics
import time

import pytest
from api_world import BOTH_BACKENDS, PASSWORD, Api, assert_error


@BOTH_BACKENDS
async def test_register_returns_me_without_secrets(api: Api) -> None:
    r = await api.post(
        "/auth/register",
        json={"username": "Alice", "email": "Alice@Example.COM", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {
        "id",
        "username",
        "display_name",
        "bio",
        "avatar_media_id",
        "created_at",
        "email",
    }
    assert body["username"] == "alice"
    assert body["email"] == "Alice@example.com"
    assert isinstance(body["id"], str) and body["id"].isdigit()
    assert body["created_at"].endswith("Z")
    assert PASSWORD not in r.text and "argon2" not in r.text


async def test_register_conflicts_and_validation(api: Api) -> None:
    await api.user("bob")
    r = await api.post(
        "/auth/register", json={"username": "BOB", "email": "x@example.com", "password": PASSWORD}
    )
    assert_error(r, 409, "username_taken")
    r = await api.post(
        "/auth/register",
        json={"username": "bobby", "email": "BOB@example.com", "password": PASSWORD},
    )
    assert_error(r, 409, "email_taken")
    r = await api.post(
        "/auth/register", json={"username": "b!", "email": "b@example.com", "password": PASSWORD}
    )
    assert_error(r, 422, "validation_error")
    r = await api.post(
        "/auth/register", json={"username": "carol", "email": "c@example.com", "password": "short"}
    )
    assert_error(r, 422, "validation_error")


@BOTH_BACKENDS
async def test_login_by_username_or_email_and_me(api: Api) -> None:
    user = await api.user("dora")
    for body in (
        {"login": "DORA", "password": PASSWORD},
        {"email": "dora@example.com", "password": PASSWORD},
        {"username": "dora", "password": PASSWORD},
    ):
        r = await api.post("/auth/login", json=body)
        assert r.status_code == 200, r.text
        pair = r.json()
        assert pair["token_type"] == "Bearer"
        assert pair["expires_in"] == 900
        assert pair["user"]["id"] == user.id
    r = await api.get("/users/me", user)
    assert r.status_code == 200
    assert r.json()["email"] == "dora@example.com"


async def test_unknown_user_and_wrong_password_look_the_same(api: Api) -> None:
    await api.user("erin")
    wrong = await api.post("/auth/login", json={"login": "erin", "password": "not the password"})
    unknown = await api.post("/auth/login", json={"login": "nobody", "password": PASSWORD})
    assert_error(wrong, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()
    assert wrong.status_code == unknown.status_code
    r = await api.post("/auth/login", json={"password": PASSWORD})
    assert_error(r, 422)


@pytest.mark.slow
async def test_unknown_user_and_wrong_password_take_the_same_time(api: Api) -> None:
    """No timing oracle for which accounts exist: an unknown login burns a real argon2id
    verification too. Interleaved tries, so drift on a busy machine hits both alike."""
    await api.user("tess")
    wrong_ms: list[float] = []
    unknown_ms: list[float] = []
    for n in range(150):
        for login, password, times in (
            ("tess", f"wrong password {n}", wrong_ms),
            (f"nobody{n}", f"wrong password {n}", unknown_ms),
        ):
            started = time.perf_counter()
            r = await api.post("/auth/login", json={"login": login, "password": password})
            times.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 401
    wrong, unknown = statistics.median(wrong_ms), statistics.median(unknown_ms)
    # A login without argon2 costs ~1 ms here, with it ~25 ms: a gap of 5 ms would say
    # which it was; the medians sit well within that.
    assert abs(wrong - unknown) < 5.0, (wrong, unknown)
    assert min(wrong, unknown) > 5.0  # both really hashed


@BOTH_BACKENDS
async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    user = await api.user("fred")
    r = await api.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != user.refresh_token
    # The first token is spent: presenting it again is reuse and kills the whole login.
    r = await api.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_error(r, 401, "refresh_token_reused")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = await api.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_error(r, 401, "invalid_token")


async def test_logout_revokes_the_refresh_family_and_its_access_tokens(api: Api) -> None:
    user = await api.user("gina")
    other = await api.post("/auth/login", json={"login": "gina", "password": PASSWORD})
    other_auth = {"Authorization": f"Bearer {other.json()['access_token']}"}
    r = await api.post("/auth/logout", json={"refresh_token": user.refresh_token})
    assert r.status_code == 204 and r.content == b""
    r = await api.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_error(r, 401, "invalid_token")
    # That login's access token dies with it, not 15 minutes later; another login lives.
    assert_error(await api.get("/users/me", user), 401, "invalid_token")
    assert (await api.request("GET", "/users/me", headers=other_auth)).status_code == 200
    r = await api.post("/auth/logout", json={"refresh_token": "never-issued"})
    assert_error(r, 401, "invalid_token")


async def test_logout_all_kills_access_and_refresh_tokens(api: Api) -> None:
    user = await api.user("hank")
    r = await api.post("/auth/logout_all", user)
    assert r.status_code == 204
    assert_error(await api.get("/users/me", user), 401, "invalid_token")
    r = await api.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_error(r, 401)


async def test_change_password(api: Api) -> None:
    user = await api.user("ivy")
    r = await api.post(
        "/auth/password", user, json={"old_password": "wrong one!", "new_password": "n3w-secret"}
    )
    assert_error(r, 401, "invalid_credentials")
    r = await api.post(
        "/auth/password", user, json={"old_password": PASSWORD, "new_password": "n3w-secret"}
    )
    assert r.status_code == 204, r.text
    # Every earlier token is dead; the new password logs in, the old one does not.
    assert_error(await api.get("/users/me", user), 401, "invalid_token")
    r = await api.post("/auth/login", json={"login": "ivy", "password": PASSWORD})
    assert_error(r, 401, "invalid_credentials")
    r = await api.post("/auth/login", json={"login": "ivy", "password": "n3w-secret"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic abc", "Bearer not.a.jwt", "Bearer " + "x" * 5000],
)
async def test_bad_or_missing_bearer_is_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = await api.get("/users/me", headers=headers)
    assert_error(r, 401, "unauthenticated" if header is None else "invalid_token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
