"""Domain errors: each carries a stable snake_case code and the HTTP status it maps to.

The same errors surface over REST (`{"error": {...}}` with `status`) and over the WebSocket
(`{"ok": false, "error": {...}}`), so REST and live actions share one error model.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a client may see; never used for programming errors."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details


class ValidationFailed(DomainError):
    status = 422
    default_code = "validation_error"


class Unauthorized(DomainError):
    status = 401
    default_code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    default_code = "forbidden"


class NotFound(DomainError):
    status = 404
    default_code = "not_found"


class Conflict(DomainError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(DomainError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMedia(DomainError):
    status = 415
    default_code = "unsupported_media_type"


class RateLimited(DomainError):
    status = 429
    default_code = "rate_limited"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: str | None = None,
        limit: int | None = None,
        reset: float | None = None,
    ) -> None:
        """`limit`: the budget a full bucket holds; `reset`: seconds until it is full."""
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after
        self.limit = limit
        self.reset = reset


class InsufficientStorage(DomainError):
    """The server cannot store what was sent: its disk is full or its media folder cannot
    be written. Nothing was stored; the same request may succeed once an operator acts."""

    status = 507
    default_code = "insufficient_storage"
    retryable = True


class Unavailable(DomainError):
    status = 503
    default_code = "unavailable"
    retryable = True

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after
