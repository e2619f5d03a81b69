"""The relay reads never-relayed entries from an index of their own; completion comes
from the event log, not from per-kind bits.

- Entries relayed but not yet done by every kind used to be scanned past on every relay
  read (quadratic while consumers lag behind); they leave this partial index the moment
  they are relayed, so a read costs the same however far the consumers are behind.
- outbox.done (a bit per kind, three UPDATEs per event) is dropped: the relay completes an
  entry once every consumer group has acknowledged it in the log (one UPDATE per batch).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox: index of never-relayed entries; completion from the log"

STATEMENTS = [
    'CREATE INDEX outbox_unrelayed_seq_idx ON "outbox" ("seq") WHERE "relay_epoch" IS NULL',
    'ALTER TABLE "outbox" DROP COLUMN "done"',
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="storage", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
