"""Types and codecs of the WebSocket session protocol (docs: PROTOCOL.md, v1).

Pure: no I/O, no asyncio. The session decodes a frame with `decode_request`, which yields
one typed request per op (`id` and `op` sit beside the arguments), and answers with the
`encode_*` functions, which return the exact bytes of a text frame.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

import msgspec

from channels.backend import Position

__all__ = [
    "AUTH_TIMEOUT_S",
    "MAX_FRAME_BYTES",
    "OPS",
    "Auth",
    "CloseCode",
    "CommentCreate",
    "ErrorCode",
    "FeedPage",
    "FrameError",
    "NotificationsPage",
    "NotificationsRead",
    "Ping",
    "PostCreate",
    "PostDelete",
    "PostLike",
    "PostUnlike",
    "Request",
    "Search",
    "Subscribe",
    "SubscribeResult",
    "Unsubscribe",
    "UserBlock",
    "UserFollow",
    "UserUnblock",
    "UserUnfollow",
    "decode_request",
    "encode_close_soon",
    "encode_error",
    "encode_push",
    "encode_reply",
]

# A client frame carries one request (a post is at most 500 characters); 64 KiB leaves
# ample room for that while stopping a client from making the server parse megabytes.
MAX_FRAME_BYTES = 64 * 1024
# Long enough for a client to refresh an expired token on a slow mobile link, short enough
# that unauthenticated sockets cannot pile up.
AUTH_TIMEOUT_S = 10.0


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
    """Codes of error replies (the same codes REST uses)."""

    INVALID_FRAME = "invalid_frame"
    UNKNOWN_OP = "unknown_op"
    UNAUTHENTICATED = "unauthenticated"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (an error code, not a secret)
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    VALIDATION_ERROR = "validation_error"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


# Ids are 64-bit integers that travel as decimal strings (JavaScript loses precision past
# 2**53); at most 19 digits. Whether the value exists is the domain's question.
IdStr = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,18}$")]
# Over the cap (40) is clamped, not refused, as on REST; zero or less is a client bug.
Limit = Annotated[int, msgspec.Meta(ge=1)]


class _Request(msgspec.Struct, tag_field="op", frozen=True):
    id: int


class Auth(_Request, tag="auth", frozen=True):
    token: str


class Subscribe(_Request, tag="subscribe", frozen=True):
    channel: str
    # Left untyped so that an unreadable `since` is "not recovered", not an error reply,
    # as the protocol says; `position` reads it.
    since: Any = None

    @property
    def position(self) -> Position | None:
        """`since` as a Position; one that can never be recovered when unreadable."""
        if self.since is None:
            return None
        if isinstance(self.since, dict):
            offset, epoch = self.since.get("offset"), self.since.get("epoch")
            if isinstance(offset, str) and isinstance(epoch, str):
                return Position(offset, epoch)
        return Position("", "")


class Unsubscribe(_Request, tag="unsubscribe", frozen=True):
    channel: str


class Ping(_Request, tag="ping", frozen=True):
    pass


class PostCreate(_Request, tag="post.create", frozen=True):
    content: str
    media_ids: list[IdStr] | None = None
    idempotency_key: str | None = None


class PostDelete(_Request, tag="post.delete", frozen=True):
    post_id: IdStr


class PostLike(_Request, tag="post.like", frozen=True):
    post_id: IdStr


class PostUnlike(_Request, tag="post.unlike", frozen=True):
    post_id: IdStr


class CommentCreate(_Request, tag="comment.create", frozen=True):
    post_id: IdStr
    content: str


class UserFollow(_Request, tag="user.follow", frozen=True):
    user_id: IdStr


class UserUnfollow(_Request, tag="user.unfollow", frozen=True):
    user_id: IdStr


class UserBlock(_Request, tag="user.block", frozen=True):
    user_id: IdStr


class UserUnblock(_Request, tag="user.unblock", frozen=True):
    user_id: IdStr


class FeedPage(_Request, tag="feed.page", frozen=True):
    max_id: IdStr | None = None
    limit: Limit | None = None


class NotificationsPage(_Request, tag="notifications.page", frozen=True):
    max_id: IdStr | None = None
    limit: Limit | None = None


class NotificationsRead(_Request, tag="notifications.read", frozen=True):
    up_to_id: IdStr | None = None


class Search(_Request, tag="search", frozen=True):
    q: str
    type: Literal["users", "posts"]
    max_id: IdStr | None = None
    limit: Limit | None = None


Request = (
    Auth
    | Subscribe
    | Unsubscribe
    | Ping
    | PostCreate
    | PostDelete
    | PostLike
    | PostUnlike
    | CommentCreate
    | UserFollow
    | UserUnfollow
    | UserBlock
    | UserUnblock
    | FeedPage
    | NotificationsPage
    | NotificationsRead
    | Search
)

OPS: frozenset[str] = frozenset(str(cls.__struct_config__.tag) for cls in Request.__args__)


class FrameError(Exception):
    """A frame that gets an error reply; the socket stays open."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id

    @property
    def is_violation(self) -> bool:
        """Counts toward the invalid-frames-per-minute limit (a broken or hostile client)."""
        return self.code in (ErrorCode.INVALID_FRAME, ErrorCode.UNKNOWN_OP)


_request_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def decode_request(frame: bytes | str) -> Request:
    """Decode one client frame into its typed request, or raise FrameError."""
    try:
        return _request_decoder.decode(frame)
    except msgspec.DecodeError as exc:
        failure: msgspec.DecodeError = exc
    # The slow path, for bad frames only: find out what is wrong and whose id to answer.
    try:
        obj = _any_decoder.decode(frame)
    except msgspec.DecodeError:
        raise FrameError(ErrorCode.INVALID_FRAME, "frame is not valid JSON", None) from None
    if not isinstance(obj, dict):
        raise FrameError(ErrorCode.INVALID_FRAME, "frame must be a JSON object", None)
    raw_id = obj.get("id")
    # bool is an int in Python but not a request id.
    request_id = raw_id if type(raw_id) is int else None
    op = obj.get("op")
    if request_id is None:
        raise FrameError(ErrorCode.INVALID_FRAME, "frame needs an integer id", None)
    if not isinstance(op, str):
        raise FrameError(ErrorCode.INVALID_FRAME, "frame needs a string op", request_id)
    if op not in OPS:
        raise FrameError(ErrorCode.UNKNOWN_OP, f"unknown op {op[:64]!r}", request_id)
    raise FrameError(ErrorCode.VALIDATION_ERROR, str(failure), request_id)


class SubscribeResult(msgspec.Struct, frozen=True):
    """Result of `subscribe`: where live pushes continue, and what came before them.

    `offset`/`epoch` are the position of the last event in `events` (or the starting point
    when `events` is empty): live pushes continue right after it.
    """

    channel: str
    offset: str
    epoch: str
    recovered: bool
    events: list[msgspec.Raw]


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


class _PushEvent(msgspec.Struct):
    push: str
    channel: str
    offset: str
    epoch: str
    event: msgspec.Raw


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
    code: ErrorCode,
    message: str,
    *,
    retryable: bool = False,
    details: Any = None,
) -> bytes:
    """`{"id": .., "ok": false, "error": {code, message, retryable[, details]}}`."""
    body = _ErrorBody(str(code), message, retryable, details)
    return _encoder.encode(_ErrorReply(request_id, False, body))


def encode_push(channel: str, position: Position, payload: bytes) -> bytes:
    """A push frame; `payload` (already-encoded event JSON) is spliced in, not re-parsed."""
    return _encoder.encode(
        _PushEvent("event", channel, position.offset, position.epoch, msgspec.Raw(payload))
    )


def encode_close_soon(code: CloseCode, reason: str) -> bytes:
    """`{"push": "close_soon", "code": .., "reason": ..}`, sent before a planned close."""
    return _encoder.encode(_CloseSoon("close_soon", int(code), reason))
