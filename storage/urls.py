"""Database URLs: the one grammar, used by the settings (to fail at start with one line)
and by the engine factory. Imports nothing heavy, so checking configuration is cheap.

    sqlite:///relative/path.db   sqlite:////absolute/path.db   (SQLAlchemy's convention)
    postgresql://user@host:5432/dbname   (or postgres://)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["DatabaseKind", "DatabaseUrl", "parse_database_url"]

# piccolo's own engine_type names.
DatabaseKind = Literal["sqlite", "postgres"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    kind: DatabaseKind
    # SQLite: the file path; PostgreSQL: the DSN as given.
    target: str


def parse_database_url(url: str) -> DatabaseUrl:
    """Raises ValueError whose message is one line saying what is wrong and how to fix it."""
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in _POSTGRES_SCHEMES:
        if not urlsplit(url).path.strip("/"):
            raise ValueError("a PostgreSQL URL needs a database name")
        return DatabaseUrl("postgres", url)
    if scheme != "sqlite":
        raise ValueError(
            f"unsupported scheme {scheme or url!r}; use sqlite:///path/to/file.db or"
            " postgresql://user@host/dbname"
        )
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        raise ValueError(
            "a SQLite URL needs a file path: sqlite:///relative.db or sqlite:////absolute.db"
        )
    path = url.removeprefix("sqlite:///")
    if path == ":memory:" or path.startswith("file::memory:"):
        # piccolo's SQLite engine opens a connection per query: an in-memory database
        # would be a new, empty one every time.
        raise ValueError("in-memory SQLite is not supported; give a file path")
    return DatabaseUrl("sqlite", path)
