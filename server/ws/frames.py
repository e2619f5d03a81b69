"""The session's own frames: replies, error replies, `close_soon`, and the close codes.

Pure: no I/O. Each `encode_*` returns the exact bytes of one text frame (docs/protocol.md).
Pushes of channel events are encoded by the live layer (channels.protocol.encode_push).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

import msgspec

__all__ = ["CloseCode", "ErrorCode", "encode_close_soon", "encode_error", "encode_reply"]


class CloseCode(IntEnum):
    """WebSocket close codes; 4000-4499 invite a reconnect, 4500-4999 do not."""

    NORMAL = 1000
    TOO_LARGE = 1009
    GOING_AWAY = 4000
    SLOW_CONSUMER = 4001
    RATE_LIMITED = 4008
    TOO_MANY_SOCKETS = 4029
    UNAUTHENTICATED = 4401
    PROTOCOL_VIOLATION = 4500
    FORBIDDEN = 4503


class ErrorCode(StrEnum):
    """Codes of the errors the session itself answers; domain errors (not_found, forbidden,
    invalid_token, ...) carry their own codes, the same as over REST."""

    INVALID_FRAME = "invalid_frame"
    UNKNOWN_OP = "unknown_op"
    VALIDATION_ERROR = "validation_error"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"


class _Reply(msgspec.Struct):
    id: int
    ok: bool
    result: Any


class _ErrorBody(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    retryable: bool
    details: Any = None  # omitted when None: most errors have nothing to add


class _ErrorReply(msgspec.Struct):
    id: int | None
    ok: bool
    error: _ErrorBody


class _CloseSoon(msgspec.Struct):
    push: str
    code: int
    reason: str


_encoder = msgspec.json.Encoder()


def encode_reply(request_id: int, result: Any) -> bytes:
    """`{"id": .., "ok": true, "result": ..}`; `result` is any msgspec-encodable value."""
    return _encoder.encode(_Reply(request_id, True, result))


def encode_error(
    request_id: int | None,
    code: str,
    message: str,
    *,
    retryable: bool = False,
    details: Any = None,
) -> bytes:
    """`{"id": .., "ok": false, "error": {code, message, retryable[, details]}}`; the codes
    are those of REST (domain errors) plus the session's own (`invalid_frame`, ...)."""
    body = _ErrorBody(code, message, retryable, details)
    return _encoder.encode(_ErrorReply(request_id, False, body))


def encode_close_soon(code: CloseCode, reason: str) -> bytes:
    """`{"push": "close_soon", "code": .., "reason": ..}`, sent before a planned close."""
    return _encoder.encode(_CloseSoon("close_soon", int(code), reason))
