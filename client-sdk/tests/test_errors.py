from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plaza_client.errors import (
    AuthError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PlazaError,
    ProtocolError,
    RateLimited,
    ServiceUnavailable,
    SessionClosed,
    UnsupportedMediaType,
    ValidationError,
    error_from_http,
    error_from_ws,
    parse_retry_after,
)


def body(code: str, message: str = "m", details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details}}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ValidationError),
        (401, AuthError),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (415, UnsupportedMediaType),
        (422, ValidationError),
        (429, RateLimited),
        (503, ServiceUnavailable),
        (500, PlazaError),
        (418, PlazaError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[PlazaError]) -> None:
    err = error_from_http(status, body("some_code"), {})
    assert type(err) is cls
    assert err.status == status and err.code == "some_code" and err.message == "m"


def test_carries_details_and_str() -> None:
    err = error_from_http(422, body("validation_error", "too long", {"field": "content"}), {})
    assert err.details == {"field": "content"}
    assert str(err) == "[422] validation_error: too long"


def test_missing_or_odd_body_still_maps() -> None:
    err = error_from_http(404, None, {})
    assert isinstance(err, NotFound) and err.code == "not_found"
    assert isinstance(error_from_http(409, {"error": "taken"}, {}), Conflict)
    assert isinstance(error_from_http(400, ["x"], {}), ValidationError)


def test_retry_after_from_header_seconds() -> None:
    err = error_from_http(429, body("rate_limited"), {"retry-after": "12"})
    assert isinstance(err, RateLimited) and err.retry_after == 12.0 and err.retryable


def test_retry_after_falls_back_to_details() -> None:
    err = error_from_http(503, body("unavailable", details={"retry_after": 2.5}), {})
    assert isinstance(err, ServiceUnavailable) and err.retry_after == 2.5
    assert error_from_http(503, None, {}).retryable


def test_parse_retry_after_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("unauthenticated", AuthError),
        ("invalid_token", AuthError),
        ("forbidden", Forbidden),
        ("not_found", NotFound),
        ("conflict", Conflict),
        ("validation_error", ValidationError),
        ("rate_limited", RateLimited),
        ("unavailable", ServiceUnavailable),
        ("invalid_frame", ProtocolError),
        ("unknown_op", ProtocolError),
        ("too_large", PayloadTooLarge),
        ("brand_new_code", PlazaError),
    ],
)
def test_ws_error_maps_by_code(code: str, cls: type[PlazaError]) -> None:
    err = error_from_ws({"code": code, "message": "x", "retryable": False})
    assert type(err) is cls and err.code == code and err.status is None


def test_ws_error_retryable_and_malformed() -> None:
    assert error_from_ws({"code": "brand_new", "message": "x", "retryable": True}).retryable
    limited = error_from_ws({"code": "rate_limited", "message": "x", "details": {"retry_after": 3}})
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0
    assert isinstance(error_from_ws("nonsense"), ProtocolError)


def test_session_closed_carries_code_and_reason() -> None:
    err = SessionClosed(4500, "protocol violation")
    assert err.close_code == 4500 and err.reason == "protocol violation"
    assert isinstance(err, PlazaError)
    assert SessionClosed(1009).message == "closed with code 1009"
