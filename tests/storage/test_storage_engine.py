"""Engines from URLs, migrations, and the blob store."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from piccolo.querystring import QueryString

from storage.blobs import FileBlobStore
from storage.db import _pg_compiled
from storage.factory import open_storage
from storage.migrate import migrate
from storage.search import fts5_query, like_pattern, tsquery, words
from storage.urls import parse_database_url


def test_parse_database_url() -> None:
    assert parse_database_url("sqlite:///var/plaza.db").target == "var/plaza.db"
    assert parse_database_url("sqlite:////abs/plaza.db").target == "/abs/plaza.db"
    assert parse_database_url("sqlite:///var/plaza.db").kind == "sqlite"
    assert parse_database_url("postgresql://u@h/db").kind == "postgres"
    assert parse_database_url("postgres://u@h/db").kind == "postgres"
    # One grammar for settings and engine: a bare path is refused by both.
    for bad in (
        "",
        "./plaza.db",
        "mysql://x/y",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://h/",
    ):
        with pytest.raises(ValueError):
            parse_database_url(bad)


def test_search_query_helpers() -> None:
    assert words('Héllo, "world"! a*b OR c') == ["héllo", "world", "a", "b", "or", "c"]
    assert fts5_query(["ab", "cd"]) == '"ab"* "cd"*'
    assert tsquery(["ab", "cd"]) == "ab:* & cd:*"
    assert like_pattern("a%b_c\\d") == "%a\\%b\\_c\\\\d%"


async def test_migrate_twice_is_a_no_op(database_url: str) -> None:
    await migrate(database_url)
    storage = await open_storage(database_url)
    try:
        before = await storage.db.fetch("SELECT name FROM migration ORDER BY name")
        assert len(before) >= 2
        await migrate(database_url)
        await asyncio.gather(migrate(database_url), migrate(database_url))
        after = await storage.db.fetch("SELECT name FROM migration ORDER BY name")
        assert [r["name"] for r in after] == [r["name"] for r in before]
        await storage.ping()
    finally:
        await storage.close()


async def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'plaza.db'}"
    storage = await open_storage(url, run_migrations=True)
    try:
        assert await storage.db.fetchval("PRAGMA journal_mode") == "wal"
        assert storage.kind == "sqlite"
    finally:
        await storage.close()


@pytest.mark.postgres
async def test_two_databases_in_one_process_at_once(tmp_path: Path, postgres_url: str) -> None:
    # Repositories run on their own engine, never on a global one.
    from storage_helpers import make_post

    lite = await open_storage(f"sqlite:///{tmp_path / 'a.db'}", run_migrations=True)
    pg = await open_storage(postgres_url, run_migrations=True)
    try:
        await lite.store.posts.add(make_post(1, 1, "in sqlite"))
        await pg.store.posts.add(make_post(2, 1, "in postgres"))
        assert await lite.store.posts.get(2) is None
        assert await pg.store.posts.get(1) is None
        assert (await pg.store.posts.get(2)) is not None
    finally:
        await lite.close()
        await pg.close()


async def test_blob_store_round_trip(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "media")
    data = b"\x89PNG fake image"
    digest = hashlib.sha256(data).hexdigest()
    assert await blobs.get(digest) is None
    await asyncio.gather(blobs.put(digest, data), blobs.put(digest, data))
    assert await blobs.get(digest) == data
    path = tmp_path / "media" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == [digest]  # no temp files left
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31):
        with pytest.raises(ValueError):
            await blobs.get(bad)


async def test_sqlite_pooled_readers_see_every_commit_at_once(tmp_path: Path) -> None:
    """Reads outside transactions run on long-lived connections; they must never serve
    a stale snapshot (no read transaction is ever left open) and must be closed."""
    from storage.engine import SQLITE_READERS, PlazaSQLiteEngine
    from storage.factory import open_storage

    handle = await open_storage(f"sqlite:///{tmp_path / 'r.db'}", run_migrations=True)
    engine = handle.engine
    assert isinstance(engine, PlazaSQLiteEngine)
    db = handle.db
    try:
        await db.execute("CREATE TABLE probe (n INTEGER)")
        for n in range(20):
            async with db.transaction():
                await db.execute("INSERT INTO probe (n) VALUES ({})", n)
            # Every reader of the pool answers, each seeing the row just committed.
            counts = await asyncio.gather(
                *(db.fetchval("SELECT COUNT(*) AS c FROM probe") for _ in range(SQLITE_READERS * 2))
            )
            assert counts == [n + 1] * (SQLITE_READERS * 2)
        assert len(engine._opened) == SQLITE_READERS
    finally:
        await handle.close()
    assert engine._opened == []


@pytest.mark.parametrize(
    ("sql", "args"),
    [
        ("SELECT 1", ()),
        ("SELECT * FROM users WHERE id = {}", (7,)),
        ("SELECT * FROM posts WHERE id IN ({}, {}, {}) AND deleted_at IS NULL", (1, 2, 3)),
    ],
)
def test_postgres_statements_compile_as_piccolo_compiles_them(
    sql: str, args: tuple[object, ...]
) -> None:
    # The cache in storage.db must not change a statement: same text, same values.
    expected = QueryString(sql, *args).compile_string(engine_type="postgres")
    sql_out, args_out = _pg_compiled(sql, args)
    assert (sql_out, list(args_out)) == (expected[0], list(expected[1]))
