"""Exception handlers: every error leaves as `{"error": {"code", "message", "details"?}}`.

Domain errors carry their own status and code. Litestar's own exceptions (malformed JSON,
failed decoding, unknown route, wrong method, oversized body) are translated to the same
shape so a client parses one error model. Anything else is a bug: it is logged with the
method and path only (never the query string, headers or body, where tokens and passwords
travel) and answered with a bare 500 that reveals nothing.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from domain.errors import DomainError, RateLimited, Unauthorized, Unavailable

logger = logging.getLogger("plaza.server")

# Litestar's HTTP statuses we translate, with the code clients see for them.
_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    error: ErrorBody


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorEnvelope]:
    return Response(
        ErrorEnvelope(ErrorBody(code=code, message=message, details=details)),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _retry_after(seconds: float) -> str:
    # Retry-After takes whole seconds; round up so a client that obeys it is never early.
    return str(max(1, math.ceil(seconds)))


def handle_domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[ErrorEnvelope]:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = _retry_after(exc.retry_after)
    if isinstance(exc, RateLimited) and exc.limit is not None:
        headers.update(rate_limit_headers(exc))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = bearer_challenge(exc.code)
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


def rate_limit_headers(exc: RateLimited) -> dict[str, str]:
    """The remaining budget, in the IETF draft's names (draft-ietf-httpapi-ratelimit-headers):
    a refused request leaves nothing; the whole budget is back after Reset seconds."""
    return {
        "RateLimit-Limit": str(exc.limit),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": _retry_after(exc.reset if exc.reset is not None else exc.retry_after),
    }


def bearer_challenge(code: str) -> str:
    # RFC 6750 §3: no error attribute when the request carried no credentials at all.
    if code == "unauthenticated":
        return 'Bearer realm="plaza"'
    return 'Bearer realm="plaza", error="invalid_token"'


def _validation_details(extra: Any) -> list[dict[str, str]] | None:
    """Litestar's per-field messages, keeping only field names and msgspec's text (which
    never echoes the submitted value)."""
    if not isinstance(extra, list):
        return None
    details = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        field = str(item.get("key", ""))
        if message == f"'{field}'":
            # A KeyError text: the body (or parameter) was missing altogether.
            message = "a JSON body is required" if field == "data" else f"{field} is required"
        details.append({"field": "body" if field == "data" else field, "message": message})
    return details or None


def handle_validation(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[ErrorEnvelope]:
    """Well-formed input of the wrong shape (types, missing or unknown fields): 422."""
    details = _validation_details(exc.extra)
    message = details[0]["message"] if details else "the request is not valid"
    return error_response(422, "validation_error", message, details)


def handle_http_exception(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[ErrorEnvelope]:
    status = exc.status_code
    if status >= 500:
        return handle_internal(request, exc)
    code = _HTTP_CODES.get(status, "invalid_request" if status < 500 else "internal_error")
    message = exc.detail or "request failed"
    if isinstance(exc.__cause__, SerializationException):
        # The body could not be decoded at all (Litestar wraps the decoder's error).
        if request.content_type[0].startswith("multipart/"):
            message = "the multipart body could not be parsed"
        else:
            code, message = "invalid_json", "the request body is not valid JSON"
    elif isinstance(exc, NotFoundException):
        message = "no such resource"
    elif isinstance(exc, MethodNotAllowedException):
        message = "method not allowed on this resource"
    elif status == 413:
        message = "the request body is too large"
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    return error_response(status, code, message, None, headers)


def handle_internal(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    # Method and path only: the query string, headers and body may hold credentials.
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.scope.get("path", "?"),
        exc_info=exc,
    )
    return error_response(500, "internal_error", "internal server error")


def handle_recursion(
    request: Request[Any, Any, Any], exc: RecursionError
) -> Response[ErrorEnvelope]:
    """msgspec recurses once per level of JSON nesting and gives up past Python's
    recursion limit: a body nested that deep is bad input (400), not a server error."""
    if "deserializing" in str(exc):
        return error_response(400, "invalid_json", "the request body is nested too deeply")
    return handle_internal(request, exc)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RecursionError: handle_recursion,
    DomainError: handle_domain_error,
    ValidationException: handle_validation,
    HTTPException: handle_http_exception,
    Exception: handle_internal,
}
