"""JwtAccessTokens and refresh token helpers: every defect is a clean Unauthorized."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from domain.errors import Unauthorized
from domain.ports import AccessClaims, AccessTokens
from server.security.tokens import (
    LEEWAY_SECONDS,
    Claims,
    JwtAccessTokens,
    hash_refresh_token,
    new_refresh_token,
)

SECRET = "s" * 64  # HS512 (used in one test) warns below 64 bytes
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens(clock: FakeClock) -> JwtAccessTokens:
    return JwtAccessTokens(SECRET, "plaza", "plaza-api", 900, clock=clock)


def payload(**overrides: Any) -> dict[str, Any]:
    now = int(START.timestamp())
    claims: dict[str, Any] = {
        "iss": "plaza",
        "aud": "plaza-api",
        "sub": "42",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "ver": 3,
        "sid": "family-1",
        "jti": "j1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def assert_rejected(tokens: JwtAccessTokens, token: str, code: str = "invalid_token") -> None:
    with pytest.raises(Unauthorized) as caught:
        tokens.verify(token)
    assert caught.value.code == code
    assert caught.value.status == 401
    assert caught.value.message


def test_satisfies_the_ports(tokens: JwtAccessTokens) -> None:
    port: AccessTokens = tokens
    claims: AccessClaims = port.verify(port.issue(1, 0, "s"))
    assert claims.user_id == 1


def test_round_trip(tokens: JwtAccessTokens) -> None:
    token = tokens.issue(2**63 - 1, 7, "session-abc")
    claims = tokens.verify(token)

    assert claims == Claims(
        user_id=2**63 - 1,
        token_version=7,
        session_id="session-abc",
        expires_at=START + timedelta(seconds=900),
        token_id=claims.token_id,
    )
    assert claims.expires_at.tzinfo is UTC
    assert len(claims.token_id) == 32
    assert tokens.ttl_seconds == 900


def test_token_carries_the_documented_claims(tokens: JwtAccessTokens) -> None:
    token = tokens.issue(42, 3, "family-1")
    header = jwt.get_unverified_header(token)
    body = jwt.decode(token, options={"verify_signature": False})

    assert header["alg"] == "HS256"
    assert body["sub"] == "42"
    assert (body["iss"], body["aud"], body["ver"], body["sid"]) == (
        "plaza",
        "plaza-api",
        3,
        "family-1",
    )
    assert body["exp"] - body["iat"] == 900
    assert body["nbf"] == body["iat"]
    assert tokens.issue(42, 3, "family-1") != token  # fresh jti


def test_uses_the_wall_clock_without_an_injected_one() -> None:
    tokens = JwtAccessTokens(SECRET, "plaza", "plaza-api", 60)
    claims = tokens.verify(tokens.issue(1, 0, "s"))
    assert abs(claims.expires_at.timestamp() - (time.time() + 60)) < 5


def test_expired(tokens: JwtAccessTokens, clock: FakeClock) -> None:
    token = tokens.issue(42, 0, "s")
    clock.current = START + timedelta(seconds=899)
    assert tokens.verify(token).user_id == 42
    clock.current = START + timedelta(seconds=900 + LEEWAY_SECONDS)
    assert_rejected(tokens, token, "token_expired")


def test_issued_in_the_future(tokens: JwtAccessTokens) -> None:
    later = int(START.timestamp()) + 3600
    assert_rejected(tokens, sign(payload(iat=later, nbf=later, exp=later + 900)))
    assert_rejected(tokens, sign(payload(nbf=later)))


def test_tampered_payload(tokens: JwtAccessTokens) -> None:
    header, body, signature = tokens.issue(42, 0, "s").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "1"  # become another user
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_rejected(tokens, f"{header}.{forged}.{signature}")


def test_tampered_signature(tokens: JwtAccessTokens) -> None:
    token = tokens.issue(42, 0, "s")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert_rejected(tokens, flipped)


def test_other_secret(tokens: JwtAccessTokens) -> None:
    assert_rejected(tokens, sign(payload(), key="x" * 64))


def test_alg_none(tokens: JwtAccessTokens) -> None:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = b64({"alg": "none", "typ": "JWT"})
    assert_rejected(tokens, f"{header}.{b64(payload())}.")
    assert_rejected(tokens, f"{header}.{b64(payload())}")


def test_other_algorithm_with_the_same_key(tokens: JwtAccessTokens) -> None:
    # Signed correctly but not with the pinned algorithm: refused all the same.
    assert_rejected(tokens, sign(payload(), algorithm="HS512"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "other-api"},
        {"aud": ["other-api"]},
        {"iss": "someone-else"},
    ],
)
def test_wrong_audience_or_issuer(tokens: JwtAccessTokens, overrides: dict[str, Any]) -> None:
    assert_rejected(tokens, sign(payload(**overrides)))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud", "ver", "sid", "jti"])
def test_missing_claim(tokens: JwtAccessTokens, claim: str) -> None:
    assert tokens.verify(sign(payload())).user_id == 42
    assert_rejected(tokens, sign(payload(**{claim: None})))


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": "alice"},
        {"sub": "-1"},
        {"sub": "4 2"},
        {"sub": "٤٢"},  # Arabic-Indic digits: isdigit() but not an id
        {"sub": 42},  # not a string
        {"ver": "3"},
        {"ver": True},
        {"sid": ""},
        {"sid": 5},
        {"exp": "tomorrow"},
        {"iat": "now"},
    ],
)
def test_malformed_claims(tokens: JwtAccessTokens, overrides: dict[str, Any]) -> None:
    assert_rejected(tokens, sign(payload(**overrides)))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "....", "Bearer x.y.z"])
def test_garbage(tokens: JwtAccessTokens, garbage: str) -> None:
    assert_rejected(tokens, garbage)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        JwtAccessTokens("short", "plaza", "plaza-api", 900)


def test_refresh_tokens() -> None:
    token = new_refresh_token()
    assert len(token) >= 43  # 32 bytes of randomness, base64url
    assert token != new_refresh_token()
    digest = hash_refresh_token(token)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert hash_refresh_token(token) == digest
    assert token not in digest
    assert hash_refresh_token(new_refresh_token()) != digest


def test_a_token_verified_before_still_expires_and_others_still_fail(
    tokens: JwtAccessTokens, clock: FakeClock
) -> None:
    token = tokens.issue(42, 3, "family-1")
    first = tokens.verify(token)
    assert tokens.verify(token) == first  # the second use is answered from the cache
    # The cache keeps the signature's verdict, never the time's: expiry still holds.
    clock.current = START + timedelta(seconds=900 + LEEWAY_SECONDS)
    with pytest.raises(Unauthorized) as expired:
        tokens.verify(token)
    assert expired.value.code == "token_expired"
    # A token that differs by one character is verified on its own and refused.
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(Unauthorized) as bad:
        tokens.verify(tampered)
    assert bad.value.code == "invalid_token"
