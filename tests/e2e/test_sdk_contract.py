"""Contract tests: the SDK's types and frames against the server's own, so they cannot drift.

Three directions are pinned:

* Shapes. Every wire type of the server (domain/views.py, the live events of
  domain/consumers.py, the frames of channels/protocol.py) is compared with the SDK model
  that reads it, twice: by type (msgspec.inspect: every field the SDK reads is sent by
  the server with a type the SDK accepts, and every field the server sends is modelled by
  the SDK) and by value (a realistic server instance, encoded exactly as the server
  encodes it, decoded by the SDK and compared field by field).
* Frames the server sends: replies, errors, pushes and subscribe results built by the
  server's own code (protocol encoders, the real Hub on a MemoryBackend) are read by the
  SDK's frame router and resume state.
* Frames the SDK sends: a real LiveSession performs every op against a real server; each
  frame it wrote is decoded with the server's `decode_request`, and the server answered
  every one of them `ok`.

Fields the SDK models but the server deliberately does not send are listed in SDK_ONLY,
each with its reason; anything else missing fails.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi
import pytest
from litestar.serialization import encode_json
from websockets.asyncio.client import ClientConnection

import domain.errors
import server.errors
from channels.backend import Position as ServerPosition
from channels.hub import Hub, Subscriber
from channels.memory import MemoryBackend
from channels.publisher import ChannelPublisher
from domain import channel_names as channels_of
from domain.models import Account as AccountRecord
from domain.models import Comment as CommentRecord
from domain.models import Media as MediaRecord
from domain.models import Relationship as RelationshipRecord
from domain.views import (
    CommentPosted,
    CommentView,
    MediaView,
    MeView,
    NotificationView,
    PostGone,
    PostLiked,
    PostView,
    RelationshipView,
    UnreadCount,
    UserFollowed,
    UserView,
)
from domain.views import TokenPair as ServerTokenPair
from plaza_client import (
    AsyncClient,
    AuthError,
    Comment,
    CommentCreated,
    LiveEvent,
    Me,
    Media,
    Notification,
    PlazaError,
    Position,
    Post,
    ProtocolError,
    RateLimited,
    Relationship,
    ResumeState,
    ServiceUnavailable,
    TokenPair,
    User,
)
from plaza_client._router import FrameRouter, Subscription
from plaza_client.backoff import CloseAction, close_action
from plaza_client.client import _UnreadCount
from plaza_client.errors import _BY_CODE, error_from_http, error_from_ws
from plaza_client.models import _WirePage, convert, decode, page_from_ws
from server.container import media_url
from server.ws import frames as f
from server.ws import ops
from server.ws.actions import Empty, PageResult
from tests.support.live_server import LiveServer
from tests.support.sdk import Accounts, eventually, png, until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

# (SDK model, field, server type) -> why the server never sends that field.
SDK_ONLY: dict[tuple[type[Any], str, type[Any]], str] = {
    (Relationship, "blocked_by", RelationshipView): (
        "the server does not reveal who blocks you (a block shows as 404); the SDK's "
        "field is always False"
    ),
    (_WirePage, "prev_min_id", PageResult): "WebSocket pages carry only next_max_id",
}

# -- realistic server-side instances ------------------------------------------------------

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
ADA = AccountRecord(
    id=7179401230917632,
    username="ada",
    email="ada@example.org",
    password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    display_name="Ada",
    bio="analytical engines",
    avatar_media_id=7179420001234944,
    created_at=T0,
    last_active_at=T1,
    token_version=2,
)
BOB = msgspec.structs.replace(
    ADA, id=7179401230921728, username="bob", email="bob@example.org", avatar_media_id=None
)
PHOTO = MediaRecord(
    id=7179420001234944,
    owner_id=ADA.id,
    content_type="image/png",
    size=20480,
    width=640,
    height=480,
    sha256="ab" * 32,
    created_at=T0,
)
POST = PostView(
    id="7179423485652992",
    author=UserView.of(ADA),
    content="hello plaza",
    media=[MediaView.of(PHOTO, media_url)],
    like_count=2,
    comment_count=1,
    liked_by_me=True,
    created_at=T1,
)
COMMENT = CommentView.of(
    CommentRecord(
        id=7179430000001024, post_id=int(POST.id), author_id=BOB.id, content="nice", created_at=T1
    ),
    BOB,
)
LIKE_NOTE = NotificationView(
    id="7179431000000000",
    kind="like",
    actor=UserView.of(BOB),
    post_id=POST.id,
    comment_id=None,
    read=False,
    created_at=T1,
)
COMMENT_NOTE = msgspec.structs.replace(
    LIKE_NOTE, id="7179431000004096", kind="comment", comment_id=COMMENT.id, read=True
)
FOLLOW_NOTE = msgspec.structs.replace(LIKE_NOTE, id="7179431000008192", kind="follow", post_id=None)
RELATIONSHIP = RelationshipView.of(
    RelationshipRecord(
        user_id=BOB.id, following=True, followed_by=False, blocking=False, blocked_by=True
    )
)
PAIR = ServerTokenPair(
    access_token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    refresh_token="Qk3vX9-refresh-token-urlsafe",
    token_type="Bearer",
    expires_in=900,
    user=MeView.of_me(ADA),
)

# (server instance, SDK model): REST bodies and WS replies.
SHAPES: list[tuple[Any, type[Any]]] = [
    (UserView.of(ADA), User),
    (UserView.of(BOB), User),
    (MeView.of_me(ADA), Me),
    (MediaView.of(PHOTO, media_url), Media),
    (POST, Post),
    (msgspec.structs.replace(POST, media=[], liked_by_me=False), Post),
    (COMMENT, Comment),
    (LIKE_NOTE, Notification),
    (COMMENT_NOTE, Notification),
    (FOLLOW_NOTE, Notification),
    (RELATIONSHIP, Relationship),
    (PAIR, TokenPair),
    (UnreadCount(3), _UnreadCount),
]


def shape_id(case: tuple[Any, type[Any]]) -> str:
    return f"{type(case[0]).__name__}->{case[1].__name__}"


# -- type-level comparison ----------------------------------------------------------------


def _describe(t: mi.Type) -> str:
    return type(t).__name__.removesuffix("Type")


def compatible(sdk: mi.Type, srv: mi.Type, path: str, out: list[str]) -> None:
    """Append to `out` every way in which a value of the server's type `srv` would not be
    accepted by the SDK's type `sdk`."""
    if isinstance(sdk, mi.AnyType) or isinstance(srv, mi.AnyType):
        return  # nothing to check statically (the value-level tests cover these)
    if isinstance(srv, mi.UnionType):
        for member in srv.types:
            compatible(sdk, member, path, out)
        return
    if isinstance(sdk, mi.UnionType):
        for member in sdk.types:
            attempt: list[str] = []
            compatible(member, srv, path, attempt)
            if not attempt:
                return
        out.append(f"{path}: the SDK's {_describe(sdk)} does not accept {_describe(srv)}")
        return
    if isinstance(srv, mi.LiteralType):
        values = set(srv.values)
        if isinstance(sdk, mi.LiteralType):
            if not values <= set(sdk.values):
                out.append(f"{path}: the SDK lacks literal values {values - set(sdk.values)}")
        elif not (
            (isinstance(sdk, mi.StrType) and all(isinstance(v, str) for v in values))
            or (isinstance(sdk, mi.IntType) and all(isinstance(v, int) for v in values))
        ):
            out.append(f"{path}: the SDK's {_describe(sdk)} does not accept literals {values}")
        return
    if isinstance(srv, mi.StructType) and isinstance(sdk, mi.StructType):
        compare_structs(sdk, srv, path, out)
        return
    if isinstance(srv, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        if isinstance(sdk, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            compatible(sdk.item_type, srv.item_type, f"{path}[]", out)
        else:
            out.append(f"{path}: the SDK's {_describe(sdk)} does not accept a list")
        return
    if type(sdk) is type(srv) or (isinstance(sdk, mi.FloatType) and isinstance(srv, mi.IntType)):
        return
    out.append(f"{path}: the SDK's {_describe(sdk)} does not accept {_describe(srv)}")


def compare_structs(sdk: mi.StructType, srv: mi.StructType, path: str, out: list[str]) -> None:
    sdk_fields = {f.encode_name: f for f in sdk.fields}
    srv_fields = {f.encode_name: f for f in srv.fields}
    srv_omits = bool(getattr(srv.cls.__struct_config__, "omit_defaults", False))
    for name, field in sdk_fields.items():
        where = f"{path}.{name}"
        sent = srv_fields.get(name)
        if sent is None:
            if (getattr(sdk.cls, "__origin__", sdk.cls), name, srv.cls) not in SDK_ONLY:
                need = "requires" if field.required else "reads"
                out.append(f"{where}: the SDK {need} it; the server never sends it")
            continue
        if srv_omits and not sent.required and field.required:
            out.append(f"{where}: the server may omit it; the SDK requires it")
        compatible(field.type, sent.type, where, out)
    for name in srv_fields.keys() - sdk_fields.keys():
        out.append(f"{path}.{name}: the server sends it; the SDK does not model it")


def type_problems(sdk_type: Any, server_type: Any) -> list[str]:
    out: list[str] = []
    compatible(mi.type_info(sdk_type), mi.type_info(server_type), server_type.__name__, out)
    return out


# -- value-level comparison ---------------------------------------------------------------


def assert_same(sdk: Any, srv: Any, wire: Any, path: str) -> None:
    """`sdk` (decoded by the SDK) carries what `srv` (the server's value) holds, and every
    field the SDK reads is present in `wire` (the server's JSON, as builtins)."""
    if isinstance(srv, msgspec.Struct | dict):
        srv_items = (
            {f: getattr(srv, f) for f in srv.__struct_fields__}
            if isinstance(srv, msgspec.Struct)
            else srv
        )
        assert isinstance(wire, dict), f"{path}: encoded as {wire!r}"
        if isinstance(sdk, msgspec.Struct):
            for name in sdk.__struct_fields__:
                if name not in srv_items:
                    assert (type(sdk), name, type(srv)) in SDK_ONLY, f"{path}.{name} not sent"
                    continue
                assert name in wire, f"{path}.{name}: missing from the server's encoding"
                assert_same(getattr(sdk, name), srv_items[name], wire[name], f"{path}.{name}")
            missing = set(srv_items) - set(sdk.__struct_fields__)
            assert not missing, f"{path}: the SDK drops {missing}"
        else:
            assert isinstance(sdk, dict), f"{path}: the SDK gave {type(sdk).__name__}"
            assert set(sdk) == set(wire), path
            for name, value in srv_items.items():
                assert_same(sdk[name], value, wire[name], f"{path}.{name}")
    elif isinstance(srv, list):
        assert isinstance(sdk, list) and len(sdk) == len(srv) == len(wire), path
        for i, (a, b, w) in enumerate(zip(sdk, srv, wire, strict=True)):
            assert_same(a, b, w, f"{path}[{i}]")
    elif isinstance(srv, datetime) and isinstance(sdk, str):
        assert sdk == wire, path  # an event left as a plain dict keeps the RFC 3339 text
    else:
        assert type(sdk) is type(srv) and sdk == srv, f"{path}: {sdk!r} != {srv!r}"


# -- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SHAPES, ids=shape_id)
def test_types_agree(case: tuple[Any, type[Any]]) -> None:
    server_obj, sdk_type = case
    assert type_problems(sdk_type, type(server_obj)) == []


def test_page_types_agree() -> None:
    assert type_problems(_WirePage[Post], PageResult) == []


class _Server(msgspec.Struct):
    id: str
    name: str | None
    kind: Literal["a", "b"]
    extra: int


class _Sdk(msgspec.Struct):
    id: int  # narrower than the server's
    name: str  # does not accept null
    kind: Literal["a"]  # lacks a value
    missing: str  # required, never sent


def test_the_type_check_catches_drift() -> None:
    """The checker above is what keeps the pairs honest: it must see each kind of drift."""
    problems = "\n".join(type_problems(_Sdk, _Server))
    for expected in (
        "_Server.id: the SDK's Int does not accept Str",
        "_Server.name: the SDK's Str does not accept None",
        "_Server.kind: the SDK lacks literal values {'b'}",
        "_Server.missing: the SDK requires it; the server never sends it",
        "_Server.extra: the server sends it; the SDK does not model it",
    ):
        assert expected in problems


@pytest.mark.parametrize("case", SHAPES, ids=shape_id)
def test_rest_bodies_round_trip(case: tuple[Any, type[Any]]) -> None:
    server_obj, sdk_type = case
    body = encode_json(server_obj)  # what Litestar writes for a handler's return value
    decoded = decode(body, sdk_type)
    assert_same(decoded, server_obj, msgspec.json.decode(body), type(server_obj).__name__)
    # Lists are JSON arrays of the same shapes.
    many = decode(encode_json([server_obj, server_obj]), list[sdk_type])  # type: ignore[valid-type]
    assert many == [decoded, decoded]


@pytest.mark.parametrize("case", SHAPES, ids=shape_id)
async def test_websocket_replies_round_trip(case: tuple[Any, type[Any]]) -> None:
    server_obj, sdk_type = case
    result = await reply_result(f.encode_reply(9, server_obj))
    assert_same(convert(result, sdk_type), server_obj, result, type(server_obj).__name__)


async def test_websocket_pages_and_empty_results() -> None:
    notes = [LIKE_NOTE, COMMENT_NOTE, FOLLOW_NOTE]
    for items, item_type, next_max_id in (
        ([POST], Post, POST.id),
        (notes, Notification, None),
        ([UserView.of(ADA)], User, "7179401230917632"),
    ):
        result = await reply_result(f.encode_reply(3, PageResult(items, next_max_id)))
        page = page_from_ws(result, item_type)
        assert page.next == next_max_id and page.prev is None
        assert_same(list(page), items, result["items"], "items")
    assert await reply_result(f.encode_reply(4, Empty())) == {}
    # auth's reply: the SDK keeps the session id; the user is Me.
    auth = await reply_result(
        f.encode_reply(5, {"user": MeView.of_me(ADA), "session_id": "4be1c0d2", "heartbeat_s": 20})
    )
    assert auth["session_id"] == "4be1c0d2"
    assert convert(auth["user"], Me).email == ADA.email


async def reply_result(frame: bytes) -> Any:
    """Route a reply frame through the SDK's router; what the waiting caller receives."""
    router = FrameRouter(ResumeState(), asyncio.Queue())
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    request_id = router.expect("op", future)
    reply = msgspec.json.decode(frame)
    reply["id"] = request_id  # the server echoes the request's id
    router.on_frame(msgspec.json.encode(reply))
    return await asyncio.wait_for(future, 1)


# -- errors -------------------------------------------------------------------------------


def server_error_codes() -> set[tuple[str, int]]:
    """Every (code, HTTP status) the server's code can answer with: the default code of
    each DomainError class, every `code=` given to one in domain/, server/, channels/ and
    storage/ (found in the source, so a new code cannot be missed), and the framework's."""
    classes = {
        name: cls
        for name, cls in vars(domain.errors).items()
        if isinstance(cls, type) and issubclass(cls, domain.errors.DomainError)
    }
    found = {(cls.default_code, cls.status) for cls in classes.values()}
    for package in ("domain", "server", "channels", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else None
                )
                if name not in classes:
                    continue
                for keyword in node.keywords:
                    value = keyword.value
                    if (
                        keyword.arg == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.add((value.value, classes[name].status))
    found |= {(code, status) for status, code in server.errors._HTTP_CODES.items()}
    found |= {("invalid_json", 400), ("validation_error", 422), ("internal_error", 500)}
    return found


SERVER_ERRORS = sorted(server_error_codes())


def test_the_scan_finds_the_codes_the_docs_list() -> None:
    codes = {code for code, _ in SERVER_ERRORS}
    for code in (
        "username_taken",
        "email_taken",
        "invalid_credentials",
        "token_expired",
        "refresh_token_reused",
        "blocked",
        "cannot_follow_self",
        "invalid_media",
        "image_too_large",
        "too_many_subscriptions",
    ):
        assert code in codes


@pytest.mark.parametrize(("code", "status"), SERVER_ERRORS)
def test_an_error_is_the_same_exception_over_rest_and_websocket(code: str, status: int) -> None:
    retryable = status in (429, 503) or status >= 500
    details = {"retry_after": 1.5} if status in (429, 503) else {"field": "content"}
    # What the server's exception handlers write (server/errors.py).
    envelope = server.errors.ErrorEnvelope(
        server.errors.ErrorBody(code=code, message="m", details=details)
    )
    body = encode_json(envelope)
    headers = {"retry-after": "2"} if status in (429, 503) else {}
    rest = error_from_http(status, msgspec.json.decode(body), headers)
    reply = msgspec.json.decode(f.encode_error(7, code, "m", retryable=retryable, details=details))
    assert reply["ok"] is False
    ws = error_from_ws(reply["error"])
    assert type(ws) is type(rest), f"{code}: WS {type(ws).__name__}, REST {type(rest).__name__}"
    assert (
        (ws.code, ws.message, ws.details)
        == (rest.code, rest.message, rest.details)
        == (
            code,
            "m",
            details,
        )
    )
    assert ws.retryable == rest.retryable == retryable
    if isinstance(ws, RateLimited | ServiceUnavailable):
        assert isinstance(rest, RateLimited | ServiceUnavailable)
        assert ws.retry_after == 1.5 and rest.retry_after == 2.0
    if status in (401, 403, 404, 409, 422):
        assert code in _BY_CODE, f"the SDK does not know the code {code!r}"


# The session's own codes, and the auth codes it answers before any action runs.
SESSION_CODES = [*(str(c) for c in f.ErrorCode), "unauthenticated", "invalid_token"]


@pytest.mark.parametrize("code", SESSION_CODES)
def test_every_websocket_error_code_has_a_class(code: str) -> None:
    reply = msgspec.json.decode(f.encode_error(None, code, "m"))
    error = error_from_ws(reply["error"])
    if code == f.ErrorCode.INTERNAL_ERROR:
        assert type(error) is PlazaError
    else:
        assert type(error) is _BY_CODE[code]
    if code in (f.ErrorCode.INVALID_FRAME, f.ErrorCode.UNKNOWN_OP):
        assert isinstance(error, ProtocolError)
    if code in ("unauthenticated", "invalid_token"):
        assert isinstance(error, AuthError)


def test_close_codes_follow_the_protocol() -> None:
    expected = {
        f.CloseCode.NORMAL: CloseAction.STOP,
        f.CloseCode.TOO_LARGE: CloseAction.STOP,
        f.CloseCode.GOING_AWAY: CloseAction.RECONNECT,
        f.CloseCode.SLOW_CONSUMER: CloseAction.RECONNECT,
        f.CloseCode.RATE_LIMITED: CloseAction.RECONNECT_LATER,
        f.CloseCode.TOO_MANY_SOCKETS: CloseAction.RECONNECT_LATER,
        f.CloseCode.UNAUTHENTICATED: CloseAction.REFRESH_THEN_RECONNECT,
        f.CloseCode.PROTOCOL_VIOLATION: CloseAction.STOP,
        f.CloseCode.FORBIDDEN: CloseAction.STOP,
    }
    assert set(expected) == set(f.CloseCode)  # a new close code needs a decision here
    for code, action in expected.items():
        assert close_action(int(code)) is action, code
        # 4000-4499: reconnect; 4500-4999: never without a change.
        if 4000 <= code < 4500:
            assert action is not CloseAction.STOP
        elif code >= 4500:
            assert action is CloseAction.STOP


# -- pushes and subscribe results, from the server's own hub -------------------------------

# Events as the consumers publish them: (internal channel, type, data).
USER_ID = 42
EVENTS: list[tuple[str, str, Any]] = [
    (channels_of.feed(USER_ID), "post.created", POST),
    (channels_of.feed(USER_ID), "post.deleted", PostGone(POST.id)),
    (channels_of.user(ADA.id), "post.created", POST),
    (channels_of.user(ADA.id), "user.followed", UserFollowed(str(ADA.id), UserView.of(BOB))),
    (channels_of.PUBLIC, "post.created", POST),
    (channels_of.post(int(POST.id)), "post.liked", PostLiked(POST.id, str(BOB.id), 3)),
    (channels_of.post(int(POST.id)), "post.unliked", PostLiked(POST.id, str(BOB.id), 2)),
    (
        channels_of.post(int(POST.id)),
        "comment.created",
        CommentPosted(COMMENT, 2),
    ),
    (channels_of.notifications(USER_ID), "notification.created", LIKE_NOTE),
    (channels_of.notifications(USER_ID), "notification.created", FOLLOW_NOTE),
    (channels_of.notifications(USER_ID), "notifications.unread", UnreadCount(3)),
]
# What the SDK makes of each event type's data (README: typed for these, dicts otherwise).
TYPED: dict[str, type[Any]] = {
    "post.created": Post,
    "notification.created": Notification,
    "comment.created": CommentCreated,
}
# The keys PROTOCOL.md documents for the events the SDK leaves as plain dicts.
DICT_KEYS = {
    "post.deleted": {"post_id"},
    "post.liked": {"post_id", "user_id", "like_count"},
    "post.unliked": {"post_id", "user_id", "like_count"},
    "user.followed": {"user_id", "follower"},
    "notifications.unread": {"count"},
}


class SdkSide:
    """The SDK's frame handling (router + resume state), fed the server's bytes."""

    def __init__(self) -> None:
        self.state = ResumeState()
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.router = FrameRouter(self.state, self.events)

    def subscribe_frame(self, channel: str, since: Position | None = None) -> tuple[bytes, Any]:
        """The frame the SDK sends to subscribe, and the future its reply resolves."""
        self.state.add(channel, since)
        ready = asyncio.get_running_loop().create_future()
        self.router.ready[channel] = ready
        args = self.state.subscribe_args(channel)
        request_id = self.router.expect("subscribe", channel=channel)
        return msgspec.json.encode({"id": request_id, "op": "subscribe", **args}), ready

    def drain(self) -> list[LiveEvent]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out


async def serve_subscribe(hub: Hub, subscriber: Subscriber, internal: str, frame: bytes) -> bytes:
    """What the server's session does with a subscribe frame (decode, hub, reply)."""
    request = ops.decode_request(frame)
    assert isinstance(request, ops.Subscribe)
    result = await hub.subscribe(subscriber, internal, request.position)
    return f.encode_reply(request.id, result)


async def frames(subscriber: Subscriber, count: int) -> list[bytes]:
    return [await asyncio.wait_for(subscriber.get(), 1) for _ in range(count)]


@pytest.fixture
async def hub() -> AsyncIterator[tuple[Hub, ChannelPublisher]]:
    backend = MemoryBackend()
    the_hub = Hub(backend)
    await the_hub.start()
    try:
        yield the_hub, ChannelPublisher(backend)
    finally:
        await the_hub.stop()


async def test_pushes_and_resume_round_trip(hub: tuple[Hub, ChannelPublisher]) -> None:
    the_hub, publisher = hub
    internal = sorted({channel for channel, _, _ in EVENTS})
    sdk = SdkSide()
    subscriber = Subscriber(1024 * 1024)
    names: dict[str, str] = {}
    for channel in internal:
        name = channel.removesuffix(f":{USER_ID}")  # feed:42 -> feed, as clients name it
        names[channel] = name
        frame, ready = sdk.subscribe_frame(name)
        sdk.router.on_frame(await serve_subscribe(the_hub, subscriber, channel, frame))
        sub = ready.result()
        assert isinstance(sub, Subscription) and sub.channel == name and not sub.recovered
        assert sub.position is not None

    for n, (channel, event_type, data) in enumerate(EVENTS):
        await publisher.publish(channel, event_type, data, key=f"event-{n}")
    for frame in await frames(subscriber, len(EVENTS)):
        sdk.router.on_frame(frame)
    delivered = sdk.drain()
    assert len(delivered) == len(EVENTS)
    for event, (channel, event_type, data) in zip(delivered, EVENTS, strict=True):
        assert (event.channel, event.type, event.recovered) == (names[channel], event_type, False)
        assert event.offset is not None and event.epoch is not None
        wire = msgspec.json.decode(msgspec.json.encode(data))
        if event_type in TYPED:
            assert isinstance(event.data, TYPED[event_type]), event  # not a dict fallback
        else:
            assert isinstance(event.data, dict) and set(event.data) == DICT_KEYS[event_type]
        assert_same(event.data, data, wire, event_type)

    # Resume: a new socket subscribes with the SDK's positions; the missed events come
    # back recovered, in order, once; an unknown epoch is a resync.
    positions = {name: sdk.state.position(name) for name in names.values()}
    missed = [
        (channels_of.feed(USER_ID), "post.created", msgspec.structs.replace(POST, id="71794235")),
        (channels_of.feed(USER_ID), "post.deleted", PostGone("71794235")),
    ]
    for n, (channel, event_type, data) in enumerate(missed):
        await publisher.publish(channel, event_type, data, key=f"missed-{n}")
    await asyncio.sleep(0.05)  # the old subscriber still gets them: drop it
    resumed = SdkSide()
    again = Subscriber(1024 * 1024)
    frame, ready = resumed.subscribe_frame("feed", since=positions["feed"])
    request = ops.decode_request(frame)
    assert isinstance(request, ops.Subscribe)
    feed_at = positions["feed"]
    assert feed_at is not None
    assert request.position == ServerPosition(feed_at.offset, feed_at.epoch)
    resumed.router.on_frame(await serve_subscribe(the_hub, again, channels_of.feed(USER_ID), frame))
    assert ready.result().recovered is True
    events = resumed.drain()
    assert [(e.type, e.recovered) for e in events] == [
        ("post.created", True),
        ("post.deleted", True),
    ]
    assert isinstance(events[0].data, Post) and events[0].data.id == "71794235"
    last_at = events[-1].position
    assert last_at is not None
    assert resumed.state.position("feed") == last_at

    lost = SdkSide()
    frame, ready = lost.subscribe_frame("feed", since=Position("3", "an-old-epoch"))
    lost.router.on_frame(
        await serve_subscribe(the_hub, Subscriber(1024 * 1024), channels_of.feed(USER_ID), frame)
    )
    assert ready.result().recovered is False
    assert [e.type for e in lost.drain()] == ["resync"]


async def test_close_soon_and_unaddressed_errors_end_nothing() -> None:
    sdk = SdkSide()
    sdk.router.on_frame(f.encode_close_soon(f.CloseCode.GOING_AWAY, "server going away"))
    sdk.router.on_frame(f.encode_error(None, f.ErrorCode.INVALID_FRAME, "not JSON"))
    sdk.router.on_frame(b'{"push": "something_new", "x": 1}')  # a push kind added later
    assert sdk.drain() == []


# -- the frames the SDK sends -------------------------------------------------------------


@pytest.fixture
async def accounts(server: LiveServer) -> AsyncIterator[Accounts]:
    async with Accounts(server.base_url) as pool:
        yield pool


async def test_every_op_the_sdk_sends_is_accepted_by_the_server(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    send = ClientConnection.send

    async def recording(self: ClientConnection, message: Any, *args: Any, **kw: Any) -> None:
        if isinstance(message, str):
            sent.append(message)
        await send(self, message, *args, **kw)

    monkeypatch.setattr(ClientConnection, "send", recording)
    me = await accounts.new("sender")
    them = await accounts.new("receiver")
    client: AsyncClient = me.client
    media = await client.upload_media(png())
    theirs = await them.client.create_post("theirs")
    await them.client.follow(me.id)
    notes = await eventually(client.notifications, lambda page: len(page) == 1)

    async with client.live() as live:
        feed = await live.subscribe("feed")
        await live.subscribe(f"user:{them.id}")
        await live.unsubscribe("feed")
        again = await live.subscribe("feed", since=feed.position)
        assert again.recovered
        await live.ping()
        await client.refresh()  # the session re-authenticates with the new token
        await until(lambda: live.session_id is not None, "the re-auth reply")
        created = await live.call(
            "post.create", content="with media", media_ids=[media.id], idempotency_key="c-1"
        )
        assert convert(created, Post).media[0] == media
        liked = convert(await live.call("post.like", post_id=theirs.id), Post)
        assert liked.liked_by_me
        assert not convert(await live.call("post.unlike", post_id=theirs.id), Post).liked_by_me
        comment = convert(
            await live.call("comment.create", post_id=theirs.id, content="hi"), Comment
        )
        assert comment.post_id == theirs.id
        for op, following, blocking in (
            ("user.follow", True, False),
            ("user.unfollow", False, False),
            ("user.block", False, True),
            ("user.unblock", False, False),
        ):
            rel = convert(await live.call(op, user_id=them.id), Relationship)
            assert (rel.user_id, rel.following, rel.blocking) == (them.id, following, blocking)
        page = await live.page("feed.page", Post, limit=1)
        older = await live.page("feed.page", Post, limit=1, max_id=page.next)
        assert [p.id for p in page] == [created["id"]] and older == []
        assert [n.id for n in await live.page("notifications.page", Notification, limit=5)] == [
            notes[0].id
        ]
        assert await live.call("notifications.read", up_to_id=notes[0].id) == {"count": 0}
        assert await live.call("notifications.read") == {"count": 0}
        found = await live.page("search", Post, q="media", type="posts")
        assert created["id"] in [p.id for p in found]
        assert await live.call("post.delete", post_id=created["id"]) == {}
        assert live.reconnects == 0

    requests = [ops.decode_request(frame) for frame in sent]  # raises on any bad frame
    assert {str(type(r).__struct_config__.tag) for r in requests} == set(ops.OPS)
    assert len({r.id for r in requests}) == len(requests)  # ids are unique on the socket
    by_op: dict[str, list[Any]] = {}
    for request in requests:
        by_op.setdefault(str(type(request).__struct_config__.tag), []).append(request)
    (auth,) = by_op["auth"]
    assert client.tokens is not None and auth.token == client.tokens.access_token
    since = [r for r in by_op["subscribe"] if r.since is not None]
    assert feed.position is not None and [r.position for r in since] == [
        ServerPosition(feed.position.offset, feed.position.epoch)
    ]
    (create,) = by_op["post.create"]
    assert (create.content, create.media_ids, create.idempotency_key) == (
        "with media",
        [media.id],
        "c-1",
    )
    assert [(r.limit, r.max_id) for r in by_op["feed.page"]] == [(1, None), (1, page.next)]
