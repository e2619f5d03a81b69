"""In-memory fakes of every domain port, for domain unit tests only.

They follow the semantics documented on the Protocols in `domain.ports` (case-insensitive
uniqueness, idempotent inserts that report whether they wrote, live-only `get_many`, ...)
and page with `domain.pagination.apply_page`, the reference semantics. The store is strict
where the real one would silently misbehave: a write outside `transaction()` is an
AssertionError, so a service that forgets its transaction boundary fails its tests.

Integration tests never use these: storage/, channels/ and server/ are tested against the
real PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from domain.errors import Conflict, Unauthorized, UnsupportedMedia
from domain.events import DomainEvent, decode_event, encode_event
from domain.models import (
    Account,
    Comment,
    DeadLetter,
    Edge,
    Media,
    Notification,
    OutboxEntry,
    Post,
    ProcessedImage,
    ProfileChanges,
    RefreshToken,
    Relationship,
    SeenPost,
)
from domain.pagination import PageRequest, apply_page
from domain.ports import (
    CommentRepository,
    LikeRepository,
    MediaRepository,
    NotificationRepository,
    Outbox,
    PostRepository,
    Push,
    RefreshTokenRepository,
    RelationRepository,
    UserRepository,
)

# --- time -----------------------------------------------------------------------------------


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 1.0) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def now_ms(self) -> int:
        """For SnowflakeIds(now_ms=...): ids then follow this clock."""
        return int(self._now.timestamp() * 1000)


# --- the store ------------------------------------------------------------------------------


@dataclasses.dataclass
class _State:
    """Everything the store holds. Values are frozen structs or tuples, so a snapshot only
    needs to copy the containers."""

    users: dict[int, Account] = dataclasses.field(default_factory=dict)
    follows: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    blocks: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    posts: dict[int, Post] = dataclasses.field(default_factory=dict)
    likes: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    comments: dict[int, Comment] = dataclasses.field(default_factory=dict)
    notifications: dict[int, Notification] = dataclasses.field(default_factory=dict)
    media: dict[int, Media] = dataclasses.field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = dataclasses.field(default_factory=dict)
    # outbox id (= event id) -> (encoded event, relay epoch, completed); insertion order is
    # relay order (dicts keep it)
    outbox: dict[int, tuple[bytes, str | None, bool]] = dataclasses.field(default_factory=dict)

    def snapshot(self) -> _State:
        return _State(**{f.name: type(v)(v) for f, v in _fields(self)})


def _fields(state: _State) -> list[tuple[dataclasses.Field[Any], Any]]:
    return [(f, getattr(state, f.name)) for f in dataclasses.fields(state)]


class _Repo:
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    @property
    def _s(self) -> _State:
        return self._store.state

    def _read(self, name: str) -> None:
        self._store.calls[f"{type(self).__name__}.{name}"] += 1

    def _write(self, name: str) -> None:
        self._read(name)
        if self._store.strict:
            assert self._store.in_transaction, f"{name} called outside a transaction"


class FakeUsers(_Repo):
    async def add(self, account: Account) -> None:
        self._write("add")
        for other in self._s.users.values():
            if other.username.lower() == account.username.lower():
                raise Conflict("username is taken", code="username_taken")
            if other.email.lower() == account.email.lower():
                raise Conflict("email is taken", code="email_taken")
        self._s.users[account.id] = account

    async def get(self, user_id: int) -> Account | None:
        self._read("get")
        return self._s.users.get(user_id)

    async def honours(self, user_id: int, token_version: int, family_id: str) -> bool:
        self._read("honours")
        account = self._s.users.get(user_id)
        return (
            account is not None
            and account.token_version == token_version
            and not any(
                t.family_id == family_id and t.revoked_at is not None
                for t in self._s.refresh_tokens.values()
            )
        )

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, Account]:
        self._read("get_many")
        return {u: self._s.users[u] for u in user_ids if u in self._s.users}

    async def find_by_login(self, login: str) -> Account | None:
        self._read("find_by_login")
        key = login.lower()
        for account in self._s.users.values():
            value = account.email if "@" in login else account.username
            if value.lower() == key:
                return account
        return None

    async def update_profile(self, user_id: int, changes: ProfileChanges) -> Account | None:
        self._write("update_profile")
        account = self._s.users.get(user_id)
        if account is None:
            return None
        values = {
            f: getattr(changes, f)
            for f in changes.__struct_fields__
            if getattr(changes, f) is not msgspec.UNSET
        }
        account = msgspec.structs.replace(account, **values)
        self._s.users[user_id] = account
        return account

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._write("set_password_hash")
        account = self._s.users[user_id]
        self._s.users[user_id] = msgspec.structs.replace(account, password_hash=password_hash)

    async def bump_token_version(self, user_id: int) -> int:
        self._write("bump_token_version")
        account = self._s.users[user_id]
        version = account.token_version + 1
        self._s.users[user_id] = msgspec.structs.replace(account, token_version=version)
        return version

    async def touch(self, user_id: int, at: datetime) -> None:
        self._write("touch")
        account = self._s.users.get(user_id)
        if account is not None:
            self._s.users[user_id] = msgspec.structs.replace(account, last_active_at=at)


def _edges(pairs: dict[int, int], page: PageRequest) -> list[Edge]:
    """pairs: edge id -> user id."""
    ids = apply_page(sorted(pairs, reverse=True), page)
    return [Edge(i, pairs[i]) for i in ids]


class FakeRelations(_Repo):
    async def follow(self, edge_id: int, follower_id: int, followed_id: int, at: datetime) -> bool:
        self._write("follow")
        if (follower_id, followed_id) in self._s.follows:
            return False
        self._s.follows[(follower_id, followed_id)] = edge_id
        return True

    async def unfollow(self, follower_id: int, followed_id: int) -> bool:
        self._write("unfollow")
        return self._s.follows.pop((follower_id, followed_id), None) is not None

    async def block(self, edge_id: int, blocker_id: int, blocked_id: int, at: datetime) -> bool:
        self._write("block")
        if (blocker_id, blocked_id) in self._s.blocks:
            return False
        self._s.blocks[(blocker_id, blocked_id)] = edge_id
        return True

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        self._write("unblock")
        return self._s.blocks.pop((blocker_id, blocked_id), None) is not None

    async def relationship(self, viewer_id: int, other_id: int) -> Relationship:
        self._read("relationship")
        return Relationship(
            user_id=other_id,
            following=(viewer_id, other_id) in self._s.follows,
            followed_by=(other_id, viewer_id) in self._s.follows,
            blocking=(viewer_id, other_id) in self._s.blocks,
            blocked_by=(other_id, viewer_id) in self._s.blocks,
        )

    async def blocked_either_way(self, a: int, b: int) -> bool:
        self._read("blocked_either_way")
        return (a, b) in self._s.blocks or (b, a) in self._s.blocks

    async def block_set(self, user_id: int) -> set[int]:
        self._read("block_set")
        return {b for (a, b) in self._s.blocks if a == user_id} | {
            a for (a, b) in self._s.blocks if b == user_id
        }

    async def blocks_involving(self, user_ids: Sequence[int]) -> set[tuple[int, int]]:
        self._read("blocks_involving")
        ids = set(user_ids)
        return {(a, b) for (a, b) in self._s.blocks if a in ids or b in ids}

    async def followers(self, user_id: int, page: PageRequest) -> list[Edge]:
        self._read("followers")
        pairs = {e: f for (f, t), e in self._s.follows.items() if t == user_id}
        return _edges(pairs, page)

    async def following(self, user_id: int, page: PageRequest) -> list[Edge]:
        self._read("following")
        pairs = {e: t for (f, t), e in self._s.follows.items() if f == user_id}
        return _edges(pairs, page)

    async def follower_ids(self, user_id: int) -> list[int]:
        self._read("follower_ids")
        blocks = self._s.blocks
        return [
            f
            for (f, t) in self._s.follows
            if t == user_id and (f, t) not in blocks and (t, f) not in blocks
        ]


class FakePosts(_Repo):
    async def add(self, post: Post) -> bool:
        self._write("add")
        if post.idempotency_key is not None and any(
            p.author_id == post.author_id and p.idempotency_key == post.idempotency_key
            for p in self._s.posts.values()
        ):
            return False
        assert post.id not in self._s.posts, "post id reused"
        self._s.posts[post.id] = post
        return True

    async def get(self, post_id: int) -> Post | None:
        self._read("get")
        return self._s.posts.get(post_id)

    async def get_by_idempotency_key(self, author_id: int, key: str) -> Post | None:
        self._read("get_by_idempotency_key")
        for p in self._s.posts.values():
            if p.author_id == author_id and p.idempotency_key == key:
                return p
        return None

    async def get_many(self, post_ids: Sequence[int]) -> dict[int, Post]:
        self._read("get_many")
        found = (self._s.posts.get(i) for i in post_ids)
        return {p.id: p for p in found if p is not None and p.deleted_at is None}

    async def seen_by(self, post_ids: Sequence[int], viewer_id: int | None) -> dict[int, SeenPost]:
        self._read("seen_by")
        seen: dict[int, SeenPost] = {}
        for i in post_ids:
            post = self._s.posts.get(i)
            if post is None or post.deleted_at is not None:
                continue
            author = self._s.users.get(post.author_id)
            if author is not None:
                liked = viewer_id is not None and (i, viewer_id) in self._s.likes
                seen[i] = SeenPost(post=post, author=author, liked=liked)
        return seen

    async def soft_delete(self, post_id: int, at: datetime) -> bool:
        self._write("soft_delete")
        post = self._s.posts.get(post_id)
        if post is None or post.deleted_at is not None:
            return False
        self._s.posts[post_id] = msgspec.structs.replace(post, deleted_at=at)
        return True

    async def by_author(self, author_id: int, page: PageRequest) -> list[Post]:
        self._read("by_author")
        ids = sorted(
            (p.id for p in self._s.posts.values() if p.author_id == author_id and not p.deleted_at),
            reverse=True,
        )
        return [self._s.posts[i] for i in apply_page(ids, page)]

    async def add_to_like_count(self, post_id: int, delta: int) -> int:
        self._write("add_to_like_count")
        post = self._s.posts[post_id]
        post = msgspec.structs.replace(post, like_count=post.like_count + delta)
        self._s.posts[post_id] = post
        return post.like_count

    async def add_to_comment_count(self, post_id: int, delta: int) -> int:
        self._write("add_to_comment_count")
        post = self._s.posts[post_id]
        post = msgspec.structs.replace(post, comment_count=post.comment_count + delta)
        self._s.posts[post_id] = post
        return post.comment_count


class FakeLikes(_Repo):
    async def add(self, like_id: int, post_id: int, user_id: int, at: datetime) -> bool:
        self._write("add")
        if (post_id, user_id) in self._s.likes:
            return False
        self._s.likes[(post_id, user_id)] = like_id
        return True

    async def remove(self, post_id: int, user_id: int) -> bool:
        self._write("remove")
        return self._s.likes.pop((post_id, user_id), None) is not None

    async def liked(self, user_id: int, post_ids: Sequence[int]) -> set[int]:
        self._read("liked")
        return {p for p in post_ids if (p, user_id) in self._s.likes}

    async def likers(self, post_id: int, page: PageRequest) -> list[Edge]:
        self._read("likers")
        pairs = {e: u for (p, u), e in self._s.likes.items() if p == post_id}
        return _edges(pairs, page)


class FakeComments(_Repo):
    async def add(self, comment: Comment) -> None:
        self._write("add")
        assert comment.id not in self._s.comments, "comment id reused"
        self._s.comments[comment.id] = comment

    async def get(self, comment_id: int) -> Comment | None:
        self._read("get")
        return self._s.comments.get(comment_id)

    async def get_many(self, comment_ids: Sequence[int]) -> dict[int, Comment]:
        self._read("get_many")
        return {i: self._s.comments[i] for i in comment_ids if i in self._s.comments}

    async def by_post(self, post_id: int, page: PageRequest) -> list[Comment]:
        self._read("by_post")
        ids = sorted(
            (c.id for c in self._s.comments.values() if c.post_id == post_id), reverse=True
        )
        return [self._s.comments[i] for i in apply_page(ids, page)]


class FakeNotifications(_Repo):
    async def add(self, notification: Notification) -> bool:
        self._write("add")
        if notification.id in self._s.notifications:
            return False
        self._s.notifications[notification.id] = notification
        return True

    async def page(self, user_id: int, page: PageRequest) -> list[Notification]:
        self._read("page")
        ids = sorted(
            (n.id for n in self._s.notifications.values() if n.user_id == user_id), reverse=True
        )
        return [self._s.notifications[i] for i in apply_page(ids, page)]

    async def add_many(self, notifications: Sequence[Notification]) -> None:
        self._write("add_many")
        for n in notifications:
            self._s.notifications.setdefault(n.id, n)

    async def unread_count(self, user_id: int) -> int:
        self._read("unread_count")
        return sum(
            1 for n in self._s.notifications.values() if n.user_id == user_id and n.read_at is None
        )

    async def unread_counts(self, user_ids: Sequence[int]) -> dict[int, int]:
        self._read("unread_counts")
        counts = dict.fromkeys(user_ids, 0)
        for n in self._s.notifications.values():
            if n.user_id in counts and n.read_at is None:
                counts[n.user_id] += 1
        return counts

    async def mark_read(self, user_id: int, up_to_id: int | None, at: datetime) -> int:
        self._write("mark_read")
        changed = 0
        for n in list(self._s.notifications.values()):
            if n.user_id != user_id or n.read_at is not None:
                continue
            if up_to_id is not None and n.id > up_to_id:
                continue
            self._s.notifications[n.id] = msgspec.structs.replace(n, read_at=at)
            changed += 1
        return changed


class FakeMedia(_Repo):
    async def add(self, media: Media) -> None:
        self._write("add")
        self._s.media[media.id] = media

    async def get(self, media_id: int) -> Media | None:
        self._read("get")
        return self._s.media.get(media_id)

    async def get_many(self, media_ids: Sequence[int]) -> dict[int, Media]:
        self._read("get_many")
        return {m: self._s.media[m] for m in media_ids if m in self._s.media}


class FakeRefreshTokens(_Repo):
    async def add(self, token: RefreshToken) -> None:
        self._write("add")
        assert token.token_hash not in self._s.refresh_tokens
        self._s.refresh_tokens[token.token_hash] = token

    async def get(self, token_hash: str) -> RefreshToken | None:
        self._read("get")
        return self._s.refresh_tokens.get(token_hash)

    async def mark_rotated(self, token_hash: str, at: datetime) -> bool:
        self._write("mark_rotated")
        token = self._s.refresh_tokens.get(token_hash)
        if token is None or token.rotated_at is not None:
            return False
        self._s.refresh_tokens[token_hash] = msgspec.structs.replace(token, rotated_at=at)
        return True

    async def revoke_family(self, family_id: str, at: datetime) -> None:
        self._write("revoke_family")
        self._revoke(lambda t: t.family_id == family_id, at)

    async def revoke_user(self, user_id: int, at: datetime) -> None:
        self._write("revoke_user")
        self._revoke(lambda t: t.user_id == user_id, at)

    def _revoke(self, match: Any, at: datetime) -> None:
        for key, t in list(self._s.refresh_tokens.items()):
            if match(t) and t.revoked_at is None:
                self._s.refresh_tokens[key] = msgspec.structs.replace(t, revoked_at=at)


class FakeOutbox(_Repo):
    """Both sides: the writer's Outbox and the event path's OutboxReader. Dead letters live
    beside it, as in the real store."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__(store)
        self.dead: dict[tuple[int, str], DeadLetter] = {}

    async def append(self, events: Sequence[DomainEvent]) -> None:
        self._write("append")
        for event in events:
            assert event.event_id not in self._s.outbox, "event id reused"
            self._s.outbox[event.event_id] = (encode_event(event), None, False)

    async def pending(self, epoch: str, limit: int) -> list[OutboxEntry]:
        self._read("pending")
        open_ = [
            OutboxEntry(i, data)
            for i, (data, relayed, completed) in self._s.outbox.items()
            if not completed and relayed != epoch
        ]
        return open_[:limit]

    async def mark_relayed(self, outbox_ids: Sequence[int], epoch: str, at: datetime) -> None:
        for i in outbox_ids:
            data, _, completed = self._s.outbox[i]
            self._s.outbox[i] = (data, epoch, completed)

    async def complete(self, outbox_ids: Sequence[int], at: datetime) -> None:
        for i in outbox_ids:
            data, relayed, _ = self._s.outbox[i]
            self._s.outbox[i] = (data, relayed, True)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.dead[(letter.outbox_id, letter.kind)] = letter

    async def dead_letters(self, kind: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return [d for (_, k), d in sorted(self.dead.items()) if kind in (None, k)][:limit]

    async def replay(self, outbox_id: int, kind: str) -> bool:
        if self.dead.pop((outbox_id, kind), None) is None:
            return False
        data, _, _ = self._s.outbox[outbox_id]
        self._s.outbox[outbox_id] = (data, None, False)
        return True

    async def purge_completed(self, older_than: datetime) -> int:
        done = [i for i, (_, _, completed) in self._s.outbox.items() if completed]
        for i in done:
            del self._s.outbox[i]
        return len(done)


class FakeStore:
    """domain.ports.Store in memory. `transaction()` snapshots on entry and restores the
    snapshot when the block raises, so rollbacks are observable; nested blocks behave
    like savepoints."""

    def __init__(self, *, strict: bool = True) -> None:
        self.state = _State()
        self.strict = strict
        self.calls: Counter[str] = Counter()
        self.commits = 0
        self.rollbacks = 0
        self._depth = 0
        # Annotated with the port types: Store's members are plain (settable) attributes,
        # so mypy checks them invariantly and each fake must be declared as its port.
        self.users: UserRepository = FakeUsers(self)
        self.relations: RelationRepository = FakeRelations(self)
        self.posts: PostRepository = FakePosts(self)
        self.likes: LikeRepository = FakeLikes(self)
        self.comments: CommentRepository = FakeComments(self)
        self.notifications: NotificationRepository = FakeNotifications(self)
        self.media: MediaRepository = FakeMedia(self)
        self.refresh_tokens: RefreshTokenRepository = FakeRefreshTokens(self)
        self.outbox_reader = FakeOutbox(self)
        self.outbox: Outbox = self.outbox_reader

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        saved = self.state.snapshot()
        self._depth += 1
        try:
            yield
        except BaseException:
            self.state = saved
            self.rollbacks += 1
            raise
        else:
            if self._depth == 1:
                self.commits += 1
        finally:
            self._depth -= 1

    # --- helpers for tests -----------------------------------------------------------------

    @property
    def events(self) -> list[DomainEvent]:
        """Every event in the outbox (relayed or not), oldest first."""
        return [decode_event(data) for _, (data, _, _) in sorted(self.state.outbox.items())]

    def events_of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


# --- security -------------------------------------------------------------------------------


class FakeHasher:
    """'h$' + password; an 'old$' prefix marks an outdated hash (verifies, needs rehash)."""

    def __init__(self) -> None:
        self.burned: list[str] = []
        self.hashed: list[str] = []
        self.verified = 0

    async def hash(self, password: str) -> str:
        self.hashed.append(password)
        return "h$" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        return password_hash in ("h$" + password, "old$" + password)

    def needs_rehash(self, password_hash: str) -> bool:
        return password_hash.startswith("old$")

    async def burn(self, password: str) -> None:
        self.burned.append(password)


@dataclasses.dataclass(frozen=True)
class FakeClaims:
    user_id: int
    token_version: int
    session_id: str
    expires_at: datetime


class FakeTokens:
    """Readable tokens `at.<user>.<version>.<session>.<expiry unix>`, checked against the
    fake clock; anything else is invalid_token, as the real AccessTokens promises."""

    def __init__(self, clock: FakeClock, ttl_seconds: int = 900) -> None:
        self._clock = clock
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int, token_version: int, session_id: str) -> str:
        expires = int(self._clock.now().timestamp()) + self.ttl_seconds
        return f"at.{user_id}.{token_version}.{session_id}.{expires}"

    def verify(self, token: str) -> FakeClaims:
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != "at":
            raise Unauthorized("bad token", code="invalid_token")
        try:
            user_id, version, expires = int(parts[1]), int(parts[2]), int(parts[4])
        except ValueError:
            raise Unauthorized("bad token", code="invalid_token") from None
        expires_at = datetime.fromtimestamp(expires, UTC)
        if expires_at <= self._clock.now():
            raise Unauthorized("token expired", code="invalid_token")
        return FakeClaims(user_id, version, parts[3], expires_at)


class FakeRevoker:
    def __init__(self) -> None:
        self.revoked: list[tuple[int, str]] = []
        self.revoked_users: list[int] = []

    async def revoke_session(self, user_id: int, session_id: str) -> None:
        self.revoked.append((user_id, session_id))

    async def revoke_user(self, user_id: int) -> None:
        self.revoked_users.append(user_id)


# --- live -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Published:
    channel: str
    type: str
    data: Any

    @property
    def json(self) -> Any:
        """The data as a client would see it on the wire."""
        return msgspec.json.decode(msgspec.json.encode(self.data))


class FakePublisher:
    """Records pushes; a key already published on a channel pushes nothing again, as the
    real backends' idempotency keys do."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.keys: set[tuple[str, str]] = set()
        # Channels publish_online skips (nobody subscribed to them recently).
        self.offline: set[str] = set()

    async def publish(self, channel: str, event_type: str, data: Any, *, key: str) -> None:
        msgspec.json.encode(data)  # must be encodable, as the real publisher needs
        if (channel, key) in self.keys:
            return
        self.keys.add((channel, key))
        self.published.append(Published(channel, event_type, data))

    async def publish_many(
        self, channels: Sequence[str], event_type: str, data: Any, *, key: str
    ) -> None:
        for channel in channels:
            await self.publish(channel, event_type, data, key=key)

    async def publish_online(
        self, channels: Sequence[str], event_type: str, data: Any, *, key: str
    ) -> None:
        online = [c for c in channels if c not in self.offline]
        await self.publish_many(online, event_type, data, key=key)

    async def publish_each(self, pushes: Sequence[Push]) -> None:
        for push in pushes:
            await self.publish(push.channel, push.event_type, push.data, key=push.key)

    def on(self, channel: str) -> list[Published]:
        return [p for p in self.published if p.channel == channel]

    def channels(self, event_type: str) -> list[str]:
        return [p.channel for p in self.published if p.type == event_type]

    def clear(self) -> None:
        self.published.clear()


# --- feed, search, media --------------------------------------------------------------------


class FakeFeedStore:
    """The fan-out flavour: one id set per user, written by FeedConsumer. Like the Redis
    store it may hold ids the reader must still filter (deleted posts, blocked authors,
    unfollowed ones)."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self.feeds: dict[int, set[int]] = {}
        self.reads = 0

    async def page(self, user_id: int, page: PageRequest) -> list[int]:
        """As the Redis store: stored ids minus authors the user does not follow now (or
        blocks, or is blocked by); deleted posts stay for the reader to drop."""
        self.reads += 1
        state = self._store.state
        followed = {t for (f, t) in state.follows if f == user_id}
        blocked = {b for (a, b) in state.blocks if a == user_id}
        blocked |= {a for (a, b) in state.blocks if b == user_id}
        allowed = ({user_id} | followed) - blocked
        ids = [
            i
            for i in sorted(self.feeds.get(user_id, ()), reverse=True)
            if i in state.posts and state.posts[i].author_id in allowed
        ]
        return apply_page(ids, page)

    def _audience(self, author_id: int) -> list[int]:
        return [author_id, *(f for (f, t) in self._store.state.follows if t == author_id)]

    def _posts_of(self, author_id: int) -> set[int]:
        return {p.id for p in self._store.state.posts.values() if p.author_id == author_id}

    async def post_created(self, post_id: int, author_id: int) -> None:
        for r in self._audience(author_id):
            self.feeds.setdefault(r, set()).add(post_id)

    async def post_deleted(self, post_id: int, author_id: int) -> None:
        for r in self._audience(author_id):
            self.feeds.get(r, set()).discard(post_id)

    async def follow_created(self, follow_id: int, follower_id: int, followed_id: int) -> None:
        self.feeds.setdefault(follower_id, set()).update(self._posts_of(followed_id))

    async def follow_removed(self, follower_id: int, followed_id: int) -> None:
        self.feeds.get(follower_id, set()).difference_update(self._posts_of(followed_id))

    async def block_created(self, blocker_id: int, blocked_id: int) -> None:
        await self.follow_removed(blocker_id, blocked_id)
        await self.follow_removed(blocked_id, blocker_id)


class FakeSearchIndex:
    """Substring search over the store's rows; records the queries it was given."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self.queries: list[tuple[str, str]] = []

    async def users(self, query: str, page: PageRequest) -> list[int]:
        self.queries.append(("users", query))
        q = query.lower()
        ids = sorted(
            (
                a.id
                for a in self._store.state.users.values()
                if q in a.username.lower() or q in a.display_name.lower()
            ),
            reverse=True,
        )
        return apply_page(ids, page)

    async def posts(self, query: str, page: PageRequest) -> list[int]:
        self.queries.append(("posts", query))
        words = query.lower().split()
        ids = sorted(
            (
                p.id
                for p in self._store.state.posts.values()
                if p.deleted_at is None and all(w in p.content.lower() for w in words)
            ),
            reverse=True,
        )
        return apply_page(ids, page)


class FakeBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, sha256: str, data: bytes) -> None:
        self.blobs[sha256] = data

    async def get(self, sha256: str) -> bytes | None:
        return self.blobs.get(sha256)


class FakeImageProcessor:
    """Accepts b'IMG<w>x<h>;' + payload; 'strips metadata' by dropping the header."""

    async def process(self, data: bytes) -> ProcessedImage:
        if not data.startswith(b"IMG"):
            raise UnsupportedMedia("not an image")
        header, _, payload = data[3:].partition(b";")
        width, _, height = header.partition(b"x")
        return ProcessedImage(
            content_type="image/png", data=payload, width=int(width), height=int(height)
        )


async def relay(store: FakeStore, consumers: Sequence[Any], *, at: datetime) -> int:
    """Deliver what is pending, in relay order, to `consumers` (in that order), and complete
    it: the event path's effect, without its machinery (that is tested on real storage in
    tests/channels). Returns how many events moved."""
    pending = await store.outbox_reader.pending("fake", 1000)
    for entry in pending:
        event = decode_event(entry.event)
        for consumer in consumers:
            await consumer.handle(event)
    await store.outbox_reader.complete([e.id for e in pending], at)
    return len(pending)
