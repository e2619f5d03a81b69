"""Data the scenarios share, written straight into a fresh PostgreSQL database (Plaza's
schema, made by its own migrations): users, follows, posts, and access tokens minted with
the server's own signer, so that thousands of sockets need no thousands of logins (each a
25 ms argon2 run) before the measured part begins."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import asyncpg

from bench.common import ROOT
from domain.ids import SnowflakeIds
from server.security.tokens import JwtAccessTokens
from tests.support.clients import PASSWORD
from tests.support.fleet import SECRET, base_env

__all__ = [
    "PASSWORD",
    "SECRET",
    "add_follows",
    "add_posts",
    "add_users",
    "migrate",
    "mint_tokens",
    "password_hash",
]


def migrate(url: str) -> None:
    """`plaza migrate` on `url` (the schema every Plaza process and every peer uses)."""
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        cwd=ROOT,
        env=base_env(url, None, ""),
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode())


def password_hash() -> str:
    """One argon2id hash of PASSWORD with the server's parameters, shared by every seeded
    user (a login still runs the full verify)."""
    from argon2 import PasswordHasher, Type

    from server.security.passwords import MEMORY_KIB, PARALLELISM, TIME_COST

    hasher = PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )
    return hasher.hash(PASSWORD)


async def add_users(
    conn: asyncpg.Connection, ids: list[int], now: datetime, hashed: str = "x"
) -> None:
    await conn.executemany(
        "INSERT INTO users (id, username, username_lower, email, email_lower, password_hash,"
        " display_name, bio, avatar_media_id, created_at, last_active_at, token_version)"
        " VALUES ($1, $2, $2, $3, $3, $4, $2, '', NULL, $5, $5, 0)",
        [(u, f"u{u}", f"u{u}@example.com", hashed, now) for u in ids],
    )


async def add_follows(
    conn: asyncpg.Connection, pairs: list[tuple[int, int, int]], now: datetime
) -> None:
    """(edge id, follower, followed) rows."""
    await conn.executemany(
        "INSERT INTO follows (id, follower_id, followed_id, created_at) VALUES ($1, $2, $3, $4)",
        [(i, a, b, now) for i, a, b in pairs],
    )


async def add_posts(conn: asyncpg.Connection, posts: list[tuple[int, int]], now: datetime) -> None:
    """(post id, author) rows."""
    await conn.executemany(
        "INSERT INTO posts (id, author_id, content, media_ids, created_at, like_count,"
        " comment_count) VALUES ($1, $2, 'hello world', '[]', $3, 0, 0)",
        [(p, a, now) for p, a in posts],
    )


async def author_with_followers(url: str, followers: int) -> tuple[int, list[int]]:
    """One author and `followers` users who follow them; returns their ids."""
    ids = SnowflakeIds(node=1002)
    now = datetime.now(UTC)
    author = ids.next_id()
    fans = [ids.next_id() for _ in range(followers)]
    conn = await asyncpg.connect(url)
    try:
        await add_users(conn, [author, *fans], now)
        await add_follows(conn, [(ids.next_id(), f, author) for f in fans], now)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return author, fans


def mint_tokens(user_ids: list[int], ttl: int = 3600) -> list[str]:
    """Access tokens as `POST /auth/login` issues them (token version 0, a session id per
    user that no logout revoked), signed with the fleet environment's secret."""
    tokens = JwtAccessTokens(SECRET, "plaza", "plaza-api", ttl)
    return [tokens.issue(u, 0, f"bench-{u}") for u in user_ids]
