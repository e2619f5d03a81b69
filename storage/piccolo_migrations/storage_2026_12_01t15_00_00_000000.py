"""Refresh tokens by family: every authenticated request asks whether its login (the
access token's family) was logged out, so that lookup needs an index of its own."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "refresh_tokens: index by family"

STATEMENTS = [
    'CREATE INDEX refresh_tokens_family_idx ON "refresh_tokens" ("family_id")',
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="storage", description=DESCRIPTION)

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
