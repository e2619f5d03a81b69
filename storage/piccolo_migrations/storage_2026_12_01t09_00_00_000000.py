"""The event path of a fleet: relay order, per-kind completion, dead letters.

- outbox.seq: relay order assigned at insert (a sequence on PostgreSQL; MAX + 1 under
  SQLite's single writer), backfilled in id order for existing rows.
- outbox.relay_epoch, outbox.done (a bit per consumer kind), outbox.completed_at: an entry
  stays until every kind has processed it; entries relayed before this migration by the
  old all-kinds relay count as complete.
- dead_letters: events a kind gave up on, with the error, unique per (outbox_id, kind).
- Indexes: open entries in relay order; completed entries by completion time (purge).

Columns are added with raw SQL (per engine) rather than the auto DSL because the backfill
and the PostgreSQL sequence default have to run in the same migration.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "event log: relay order, per-kind completion, dead letters"

# Bits of every consumer kind (domain.consumers.ALL_KINDS at the time of this migration).
ALL_KINDS = 7

COMMON = [
    'ALTER TABLE "outbox" ADD COLUMN "seq" BIGINT NOT NULL DEFAULT 0',
    'ALTER TABLE "outbox" ADD COLUMN "relay_epoch" TEXT NULL DEFAULT NULL',
    'ALTER TABLE "outbox" ADD COLUMN "done" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "outbox" ADD COLUMN "completed_at" TIMESTAMPTZ NULL DEFAULT NULL',
    f'UPDATE "outbox" SET "done" = {ALL_KINDS}, "completed_at" = "relayed_at" '
    'WHERE "relayed_at" IS NOT NULL',
    "DROP INDEX outbox_unrelayed_idx",
    "DROP INDEX outbox_relayed_idx",
    'CREATE INDEX outbox_open_idx ON "outbox" ("seq") WHERE "completed_at" IS NULL',
    'CREATE INDEX outbox_completed_idx ON "outbox" ("completed_at") '
    'WHERE "completed_at" IS NOT NULL',
    'CREATE TABLE "dead_letters" ("id" BIGINT PRIMARY KEY NOT NULL, '
    '"outbox_id" BIGINT NOT NULL, "kind" VARCHAR(32) NOT NULL, "attempts" INTEGER NOT NULL, '
    '"error" TEXT NOT NULL, "failed_at" TIMESTAMPTZ NOT NULL)',
    'CREATE UNIQUE INDEX dead_letters_entry_key ON "dead_letters" ("outbox_id", "kind")',
]

POSTGRES = [
    "CREATE SEQUENCE outbox_seq",
    'UPDATE "outbox" o SET "seq" = n.rn FROM (SELECT "id", row_number() OVER (ORDER BY "id") '
    'AS rn FROM "outbox") n WHERE o."id" = n."id"',
    "SELECT setval('outbox_seq', GREATEST((SELECT COALESCE(MAX(\"seq\"), 0) FROM \"outbox\"), 1))",
    "ALTER TABLE \"outbox\" ALTER COLUMN \"seq\" SET DEFAULT nextval('outbox_seq')",
    "ALTER SEQUENCE outbox_seq OWNED BY \"outbox\".\"seq\"",
]

SQLITE = [
    'UPDATE "outbox" SET "seq" = (SELECT COUNT(*) FROM "outbox" o2 WHERE o2."id" <= "outbox"."id")',
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
