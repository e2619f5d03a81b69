"""The data model of DESIGN.md as one piccolo app.

Every id is a caller-minted snowflake (BIGINT primary key), so the id doubles as the list
cursor and the feed score. Relations (follows, blocks, likes) have their own id for the same
reason: a follower list is paged by when the follow happened, not by who follows.

Columns hold plain values rather than piccolo ForeignKeys: the domain checks existence, and
keeping the tables free of FK cascades keeps the same raw SQL valid on SQLite and PostgreSQL.
Multi-column unique and plain indexes, partial indexes and full-text search live in the
raw-SQL migration after the generated one: piccolo 1.38 adds a `Unique([...])` constraint
with `ALTER TABLE ... ADD CONSTRAINT`, which SQLite does not have, whereas
`CREATE UNIQUE INDEX` works on both engines (and ON CONFLICT (cols) accepts it).
"""

from __future__ import annotations

from piccolo.columns import BigInt, Bytea, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class Users(Table, tablename="users"):
    id = BigInt(primary_key=True)
    username = Text()
    # Lowercased copies carry the case-insensitive uniqueness: a functional index on
    # lower() would do on PostgreSQL, but a plain column is indexable on both engines
    # and lets the same `WHERE username_lower = $1` use it everywhere.
    username_lower = Text(unique=True)
    email = Text()
    email_lower = Text(unique=True)
    password_hash = Text()
    display_name = Text()
    bio = Text()
    avatar_media_id = BigInt(null=True, default=None)
    created_at = Timestamptz()
    last_active_at = Timestamptz()
    token_version = Integer(default=0)


class Follows(Table, tablename="follows"):
    id = BigInt(primary_key=True)
    follower_id = BigInt()
    followed_id = BigInt()
    created_at = Timestamptz()


class Blocks(Table, tablename="blocks"):
    id = BigInt(primary_key=True)
    blocker_id = BigInt()
    blocked_id = BigInt(index=True)
    created_at = Timestamptz()


class Posts(Table, tablename="posts"):
    id = BigInt(primary_key=True)
    author_id = BigInt()
    content = Text()
    # A JSON array of media ids: one TEXT column reads and writes the same way on both
    # engines (piccolo's Array is native on PostgreSQL but JSON text on SQLite).
    media_ids = Text(default="[]")
    created_at = Timestamptz()
    deleted_at = Timestamptz(null=True, default=None)
    like_count = Integer(default=0)
    comment_count = Integer(default=0)
    idempotency_key = Text(null=True, default=None)


class Likes(Table, tablename="likes"):
    id = BigInt(primary_key=True)
    post_id = BigInt()
    user_id = BigInt()
    created_at = Timestamptz()


class Comments(Table, tablename="comments"):
    id = BigInt(primary_key=True)
    post_id = BigInt()
    author_id = BigInt()
    content = Text()
    created_at = Timestamptz()


class Notifications(Table, tablename="notifications"):
    # The id of the domain event that caused it: a replayed event hits the primary key.
    id = BigInt(primary_key=True)
    user_id = BigInt()
    kind = Varchar(length=16)
    actor_id = BigInt()
    post_id = BigInt(null=True, default=None)
    comment_id = BigInt(null=True, default=None)
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)


class Media(Table, tablename="media"):
    id = BigInt(primary_key=True)
    owner_id = BigInt()
    content_type = Varchar(length=100)
    size = BigInt()
    width = Integer()
    height = Integer()
    sha256 = Varchar(length=64)
    created_at = Timestamptz()


class RefreshTokens(Table, tablename="refresh_tokens"):
    # SHA-256 of the opaque token (hex); the token itself is never stored.
    token_hash = Varchar(length=64, primary_key=True)
    user_id = BigInt(index=True)
    family_id = Varchar(length=64, index=True)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    rotated_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class Outbox(Table, tablename="outbox"):
    # The domain event's own id (consumers key their idempotent effects on it).
    id = BigInt(primary_key=True)
    # Relay order, assigned at insert: a sequence on PostgreSQL, MAX + 1 under SQLite's
    # one writer. A transaction that saw another's commit inserts after it, so this is
    # commit order for every pair of events that could depend on each other; snowflake
    # ids are not (they are minted before the transaction, and by skewed clocks).
    seq = BigInt(default=0)
    event = Bytea()
    created_at = Timestamptz()
    relayed_at = Timestamptz(null=True, default=None)
    # The event log epoch it was last relayed under (NULL: not yet); an entry relayed
    # under an epoch the log no longer has is pending again.
    relay_epoch = Text(null=True, default=None)
    # When every consumer kind had processed it (each acknowledged it in the event log);
    # completed entries are purged after a day.
    completed_at = Timestamptz(null=True, default=None)


class DeadLetters(Table, tablename="dead_letters"):
    """Events one consumer kind gave up on. Durable beside the outbox (not in Redis, which
    may restart empty): a dead letter is committed data an operator must be able to see
    and replay (`plaza dead-letters`)."""

    id = BigInt(primary_key=True)
    outbox_id = BigInt()
    kind = Varchar(length=32)
    attempts = Integer()
    error = Text()
    failed_at = Timestamptz()


ALL_TABLES: tuple[type[Table], ...] = (
    Users,
    Follows,
    Blocks,
    Posts,
    Likes,
    Comments,
    Notifications,
    Media,
    RefreshTokens,
    Outbox,
    DeadLetters,
)
