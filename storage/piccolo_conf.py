"""piccolo's configuration module (`PICCOLO_CONF=storage.piccolo_conf`).

piccolo's migration machinery finds its engine through this module's `DB`. The engine is
chosen at runtime: `storage.migrate.migrate(url)` installs one with `use_engine()` for the
duration of a run; the piccolo CLI (`piccolo migrations new storage --auto`) falls back to
PLAZA_DATABASE_URL or the embedded default. `DB` is resolved lazily (PEP 562) so importing
this module never opens a connection.
"""

from __future__ import annotations

import os
from typing import Any

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine

APP_REGISTRY = AppRegistry(apps=["storage.piccolo_app"])

DEFAULT_DATABASE_URL = "sqlite:///var/plaza.db"

_override: Engine[Any] | None = None
_default: Engine[Any] | None = None


def use_engine(engine: Engine[Any] | None) -> None:
    """Make piccolo's engine_finder() return `engine` (None: back to the default)."""
    global _override
    _override = engine


def __getattr__(name: str) -> Any:
    global _default
    if name != "DB":
        raise AttributeError(name)
    if _override is not None:
        return _override
    if _default is None:
        from storage.engine import create_engine

        _default = create_engine(os.environ.get("PLAZA_DATABASE_URL", DEFAULT_DATABASE_URL))
    return _default
