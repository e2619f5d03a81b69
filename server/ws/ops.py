"""The requests a client sends over the session: one typed struct per op, and the decoder.

Pure: no I/O. `decode_request(frame)` yields one typed request (its `id` and `op` beside
the arguments) or raises `FrameError` carrying the error reply's code and the request id
it can still read. Ids in arguments are plain strings here: `domain.ids.parse_id` (the one
id parser) checks them where they are used, so a bad id is a `validation_error` naming
its field whichever path it came by.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from channels.backend import Position
from server.ws.frames import ErrorCode

__all__ = [
    "OPS",
    "Auth",
    "CommentCreate",
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
    "Unsubscribe",
    "UserBlock",
    "UserFollow",
    "UserUnblock",
    "UserUnfollow",
    "decode_request",
]

INVALID_FRAME = ErrorCode.INVALID_FRAME
UNKNOWN_OP = ErrorCode.UNKNOWN_OP
VALIDATION_ERROR = ErrorCode.VALIDATION_ERROR

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
    media_ids: list[str] | None = None
    idempotency_key: str | None = None


class PostDelete(_Request, tag="post.delete", frozen=True):
    post_id: str


class PostLike(_Request, tag="post.like", frozen=True):
    post_id: str


class PostUnlike(_Request, tag="post.unlike", frozen=True):
    post_id: str


class CommentCreate(_Request, tag="comment.create", frozen=True):
    post_id: str
    content: str


class UserFollow(_Request, tag="user.follow", frozen=True):
    user_id: str


class UserUnfollow(_Request, tag="user.unfollow", frozen=True):
    user_id: str


class UserBlock(_Request, tag="user.block", frozen=True):
    user_id: str


class UserUnblock(_Request, tag="user.unblock", frozen=True):
    user_id: str


class FeedPage(_Request, tag="feed.page", frozen=True):
    max_id: str | None = None
    limit: Limit | None = None


class NotificationsPage(_Request, tag="notifications.page", frozen=True):
    max_id: str | None = None
    limit: Limit | None = None


class NotificationsRead(_Request, tag="notifications.read", frozen=True):
    up_to_id: str | None = None


class Search(_Request, tag="search", frozen=True):
    q: str
    type: Literal["users", "posts"]
    max_id: str | None = None
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

    def __init__(
        self, code: ErrorCode, message: str, request_id: int | None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details

    @property
    def is_violation(self) -> bool:
        """Counts toward the invalid-frames-per-minute limit (a broken or hostile client)."""
        return self.code in (INVALID_FRAME, UNKNOWN_OP)


_request_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
# msgspec names the offending argument as "... - at `$.post_id`" (wrong type) or
# "Object missing required field `post_id`" (absent).
_AT_FIELD = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
_MISSING_FIELD = re.compile(r"missing required field `([A-Za-z_][A-Za-z0-9_]*)`")


def decode_request(frame: bytes | str) -> Request:
    """Decode one client frame into its typed request, or raise FrameError."""
    try:
        return _request_decoder.decode(frame)
    except (msgspec.DecodeError, RecursionError) as exc:
        failure: Exception = exc
    # The slow path, for bad frames only: find out what is wrong and whose id to answer.
    try:
        obj = _any_decoder.decode(frame)
    except msgspec.DecodeError:
        raise FrameError(INVALID_FRAME, "frame is not valid JSON", None) from None
    except RecursionError:
        raise FrameError(INVALID_FRAME, "frame is nested too deeply", None) from None
    if not isinstance(obj, dict):
        raise FrameError(INVALID_FRAME, "frame must be a JSON object", None)
    raw_id = obj.get("id")
    # bool is an int in Python but not a request id.
    request_id = raw_id if type(raw_id) is int else None
    op = obj.get("op")
    if request_id is None:
        raise FrameError(INVALID_FRAME, "frame needs an integer id", None)
    if not isinstance(op, str):
        raise FrameError(INVALID_FRAME, "frame needs a string op", request_id)
    if op not in OPS:
        raise FrameError(UNKNOWN_OP, f"unknown op {op[:64]!r}", request_id)
    message = str(failure)
    match = _AT_FIELD.search(message) or _MISSING_FIELD.search(message)
    details = {"field": match.group(1)} if match else None
    raise FrameError(VALIDATION_ERROR, message, request_id, details)
