"""The one piccolo app of Plaza (`storage`): its tables and committed migrations."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from storage.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="storage",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=list(ALL_TABLES),
    migration_dependencies=[],
    commands=[],
)
