"""Indexes and search: the parts of the schema piccolo's table DSL cannot express.

Hand-written (raw SQL, per engine). It must run after the generated migration that
creates the tables: MigrationManager runs `add_raw` steps *before* its own table steps,
so these cannot share a file with the tables they index.

- Multi-column unique keys as UNIQUE INDEXes: piccolo 1.38 emits
  `ALTER TABLE ADD CONSTRAINT` for `Unique([...])`, which SQLite lacks.
- Composite indexes for every list query (id is the cursor, so each ends in id).
- Partial indexes for the unread notification count and the outbox relay.
- PostgreSQL: a generated tsvector column ('simple' config: no stemming, so prefix
  search of any language behaves predictably) with a GIN index; pg_trgm GIN indexes
  so `LIKE '%...%'` on usernames and display names can use an index.
- SQLite: an external-content FTS5 table over posts.content kept in step by triggers.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T22:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes and full-text search"

COMMON = [
    'CREATE UNIQUE INDEX follows_pair_key ON "follows" ("follower_id", "followed_id")',
    'CREATE INDEX follows_follower_idx ON "follows" ("follower_id", "id")',
    'CREATE INDEX follows_followed_idx ON "follows" ("followed_id", "id")',
    'CREATE UNIQUE INDEX blocks_pair_key ON "blocks" ("blocker_id", "blocked_id")',
    # NULL keys never collide (NULLs are distinct on both engines): posts without a key
    # are unconstrained.
    'CREATE UNIQUE INDEX posts_idempotency_key ON "posts" ("author_id", "idempotency_key")',
    'CREATE INDEX posts_author_idx ON "posts" ("author_id", "id")',
    'CREATE UNIQUE INDEX likes_pair_key ON "likes" ("post_id", "user_id")',
    'CREATE INDEX likes_post_idx ON "likes" ("post_id", "id")',
    'CREATE INDEX likes_user_idx ON "likes" ("user_id", "post_id")',
    'CREATE INDEX comments_post_idx ON "comments" ("post_id", "id")',
    'CREATE INDEX notifications_user_idx ON "notifications" ("user_id", "id")',
    'CREATE INDEX notifications_unread_idx ON "notifications" ("user_id", "id") '
    'WHERE "read_at" IS NULL',
    'CREATE INDEX outbox_unrelayed_idx ON "outbox" ("id") WHERE "relayed_at" IS NULL',
    'CREATE INDEX outbox_relayed_idx ON "outbox" ("relayed_at") WHERE "relayed_at" IS NOT NULL',
]

POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    'ALTER TABLE "posts" ADD COLUMN "search_vector" tsvector '
    "GENERATED ALWAYS AS (to_tsvector('simple', \"content\")) STORED",
    'CREATE INDEX posts_search_idx ON "posts" USING GIN ("search_vector")',
    'CREATE INDEX users_username_trgm_idx ON "users" USING GIN ("username_lower" gin_trgm_ops)',
    'CREATE INDEX users_display_name_trgm_idx ON "users" '
    'USING GIN (lower("display_name") gin_trgm_ops)',
]

SQLITE = [
    "CREATE VIRTUAL TABLE posts_fts USING fts5(content, content='posts', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN "
    "INSERT INTO posts_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN "
    "INSERT INTO posts_fts(posts_fts, rowid, content) VALUES ('delete', old.id, old.content); "
    "END",
    "CREATE TRIGGER posts_fts_update AFTER UPDATE OF content ON posts BEGIN "
    "INSERT INTO posts_fts(posts_fts, rowid, content) VALUES ('delete', old.id, old.content); "
    "INSERT INTO posts_fts(rowid, content) VALUES (new.id, new.content); END",
    # Index whatever posts already exist (an upgraded database).
    "INSERT INTO posts_fts(posts_fts) VALUES ('rebuild')",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="storage", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        specific = SQLITE if engine.engine_type == "sqlite" else POSTGRES
        for statement in COMMON + specific:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
