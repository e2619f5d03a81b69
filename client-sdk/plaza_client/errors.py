"""Exceptions carrying the server's error code, message and details.

REST errors map by HTTP status (the status is the contract; codes refine it). WebSocket
replies carry no status, so `ok: false` errors map by their code, falling back to
PlazaError for codes this SDK does not know yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "AuthError",
    "Conflict",
    "ConnectionLost",
    "Forbidden",
    "NetworkError",
    "NotFound",
    "PayloadTooLarge",
    "PlazaError",
    "ProtocolError",
    "RateLimited",
    "ServiceUnavailable",
    "SessionClosed",
    "UnsupportedMediaType",
    "ValidationError",
    "error_from_http",
    "error_from_ws",
]


class PlazaError(Exception):
    """Base of every error the SDK raises for something the server (or the link) said."""

    default_code = "error"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message or code or self.default_code)
        self.message = message
        self.code = code or self.default_code
        self.details = details
        self.status = status
        self.retryable = retryable

    def __str__(self) -> str:
        head = f"[{self.status}] " if self.status else ""
        return f"{head}{self.code}: {self.message}" if self.message else f"{head}{self.code}"


class AuthError(PlazaError):
    """401: no token, a bad or expired token that could not be refreshed, bad credentials."""

    default_code = "unauthorized"


class Forbidden(PlazaError):
    default_code = "forbidden"


class NotFound(PlazaError):
    """404: the thing does not exist or is not visible to the caller."""

    default_code = "not_found"


class Conflict(PlazaError):
    """409: e.g. the username or email is taken."""

    default_code = "conflict"


class ValidationError(PlazaError):
    """400/422: invalid input; `details` usually names the field."""

    default_code = "validation_error"


class UnsupportedMediaType(ValidationError):
    """415: the upload is not an image type the server accepts."""

    default_code = "unsupported_media_type"


class PayloadTooLarge(PlazaError):
    default_code = "payload_too_large"


class _RetryAfter(PlazaError):
    def __init__(self, message: str = "", *, retry_after: float | None = None, **kw: Any) -> None:
        kw.setdefault("retryable", True)
        super().__init__(message, **kw)
        # Seconds to wait before trying again, from Retry-After (or the error's details).
        self.retry_after = retry_after


class RateLimited(_RetryAfter):
    default_code = "rate_limited"


class ServiceUnavailable(_RetryAfter):
    default_code = "unavailable"


class ProtocolError(PlazaError):
    """The live session received (or was told it sent) something outside the protocol."""

    default_code = "protocol_error"


class NetworkError(PlazaError):
    """The server could not be reached, or the connection broke mid-request."""

    default_code = "network_error"

    def __init__(self, message: str = "network error", **kw: Any) -> None:
        kw.setdefault("retryable", True)
        super().__init__(message, **kw)


class ConnectionLost(NetworkError):
    """A live call was in flight when the socket dropped; whether it ran is unknown.

    The session reconnects by itself; retry the call only if it is safe to repeat
    (e.g. post.create with an idempotency_key).
    """

    default_code = "connection_lost"

    def __init__(self, message: str = "the connection dropped before the reply", **kw: Any) -> None:
        super().__init__(message, **kw)


class SessionClosed(PlazaError):
    """The live session ended for good: a close code the client must not reconnect on
    (1000 from the server, 1009, 4500-4999), or a failed re-authentication."""

    default_code = "session_closed"

    def __init__(self, close_code: int | None, reason: str = "", **kw: Any) -> None:
        super().__init__(reason or f"closed with code {close_code}", **kw)
        self.close_code = close_code
        self.reason = reason


_BY_STATUS: dict[int, type[PlazaError]] = {
    400: ValidationError,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationError,
    429: RateLimited,
    503: ServiceUnavailable,
}

# Every code the server sends, with the class its HTTP status maps to in _BY_STATUS: the
# same error over REST and over the socket is the same exception (docs/protocol.md §2.1).
_BY_CODE: dict[str, type[PlazaError]] = {
    "unauthorized": AuthError,
    "unauthenticated": AuthError,
    "invalid_token": AuthError,
    "token_expired": AuthError,
    "refresh_token_reused": AuthError,
    "invalid_credentials": AuthError,
    "forbidden": Forbidden,
    "blocked": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "username_taken": Conflict,
    "email_taken": Conflict,
    "bad_request": ValidationError,
    "invalid_request": ValidationError,
    "invalid_json": ValidationError,
    "validation_error": ValidationError,
    "invalid_input": ValidationError,
    "invalid_media": ValidationError,
    "invalid_image": ValidationError,
    "cannot_follow_self": ValidationError,
    "cannot_block_self": ValidationError,
    # A plain DomainError on the server (status 400), like bad_request.
    "too_many_subscriptions": ValidationError,
    "unsupported_media_type": UnsupportedMediaType,
    "payload_too_large": PayloadTooLarge,
    "image_too_large": PayloadTooLarge,
    "too_large": PayloadTooLarge,
    "frame_too_large": PayloadTooLarge,
    "rate_limited": RateLimited,
    "unavailable": ServiceUnavailable,
    "service_unavailable": ServiceUnavailable,
    "invalid_frame": ProtocolError,
    "unknown_op": ProtocolError,
}


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_body(body: Any) -> tuple[str | None, str, Any]:
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None, "", None
    code = error.get("code")
    message = error.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else "",
        error.get("details"),
    )


def _details_retry_after(details: Any) -> float | None:
    if isinstance(details, Mapping):
        value = details.get("retry_after")
        if isinstance(value, int | float):
            return float(value)
    return None


def error_from_http(status: int, body: Any, headers: Mapping[str, str] | None = None) -> PlazaError:
    """The exception for a non-2xx REST reply (`body` is the parsed JSON, or None)."""
    code, message, details = _error_body(body)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServiceUnavailable if status in (502, 504) else PlazaError
    if issubclass(cls, _RetryAfter):
        header = None if headers is None else headers.get("retry-after")
        retry_after = parse_retry_after(header)
        if retry_after is None:
            retry_after = _details_retry_after(details)
        return cls(message, code=code, details=details, status=status, retry_after=retry_after)
    return cls(message, code=code, details=details, status=status, retryable=status >= 500)


def error_from_ws(error: Any) -> PlazaError:
    """The exception for the `error` object of an `ok: false` WebSocket reply."""
    if not isinstance(error, Mapping):
        return ProtocolError(f"malformed error reply: {error!r}")
    code, message, details = _error_body({"error": error})
    retryable = bool(error.get("retryable", False))
    cls = _BY_CODE.get(code or "", PlazaError)
    if issubclass(cls, _RetryAfter):
        retry_after = _details_retry_after(details)
        if retry_after is None:
            retry_after = _details_retry_after(error)
        return cls(message, code=code, details=details, retry_after=retry_after)
    return cls(message, code=code, details=details, retryable=retryable)
