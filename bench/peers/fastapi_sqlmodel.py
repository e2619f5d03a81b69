"""The seeds' own stack: FastAPI + SQLModel (SQLAlchemy's async engine on asyncpg) over
Plaza's tables in the same PostgreSQL database, written the way FastAPI's and SQLModel's
tutorials write them: models, a session dependency, a `get_current_user` dependency that
decodes the JWT and loads the user, response models. The same routes and JSON shapes as
Plaza for feed read, post create, like and login; the same pool size (10) and uvicorn
settings; the same argon2id parameters, verified in a thread as Plaza does.

    PEER_DATABASE_URL=postgresql://... python -m bench.peers.fastapi_sqlmodel --port 8004
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import BigInteger, Column, DateTime, or_
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel import Field, SQLModel, col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bench.peers import serve

SECRET = os.environ.get("PEER_SECRET", "fleet-test-secret-" + "k" * 40)
POOL_SIZE = 10  # Plaza's PG_POOL_MAX_SIZE (storage/engine.py)
hasher = PasswordHasher(
    time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def _big() -> Column:  # type: ignore[type-arg]
    return Column(BigInteger, primary_key=True, autoincrement=False)


def _at() -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=False)


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int = Field(sa_column=_big())
    username: str
    username_lower: str
    email: str
    email_lower: str
    password_hash: str
    display_name: str
    bio: str
    avatar_media_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_at())
    last_active_at: datetime = Field(sa_column=_at())
    token_version: int = 0


class Follow(SQLModel, table=True):
    __tablename__ = "follows"
    id: int = Field(sa_column=_big())
    follower_id: int = Field(sa_type=BigInteger)
    followed_id: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_at())


class Block(SQLModel, table=True):
    __tablename__ = "blocks"
    id: int = Field(sa_column=_big())
    blocker_id: int = Field(sa_type=BigInteger)
    blocked_id: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_at())


class Post(SQLModel, table=True):
    __tablename__ = "posts"
    id: int = Field(sa_column=_big())
    author_id: int = Field(sa_type=BigInteger)
    content: str
    media_ids: str = "[]"
    created_at: datetime = Field(sa_column=_at())
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    like_count: int = 0
    comment_count: int = 0
    idempotency_key: str | None = None


class Like(SQLModel, table=True):
    __tablename__ = "likes"
    id: int = Field(sa_column=_big())
    post_id: int = Field(sa_type=BigInteger)
    user_id: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_at())


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"
    token_hash: str = Field(primary_key=True)
    user_id: int = Field(sa_type=BigInteger)
    family_id: str
    created_at: datetime = Field(sa_column=_at())
    expires_at: datetime = Field(sa_column=_at())
    rotated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


# --- what the API returns (the shapes of Plaza's views) ---------------------------------


class UserOut(SQLModel):
    id: str
    username: str
    display_name: str
    bio: str
    avatar_media_id: str | None
    created_at: datetime


class PostOut(SQLModel):
    id: str
    author: UserOut
    content: str
    media: list[dict[str, str]]
    like_count: int
    comment_count: int
    liked_by_me: bool
    created_at: datetime


class PostIn(SQLModel):
    content: str


class LoginIn(SQLModel):
    login: str
    password: str


class TokensOut(SQLModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: UserOut


def user_out(u: User) -> UserOut:
    return UserOut(
        id=str(u.id),
        username=u.username,
        display_name=u.display_name,
        bio=u.bio,
        avatar_media_id=None if u.avatar_media_id is None else str(u.avatar_media_id),
        created_at=u.created_at,
    )


def post_out(p: Post, author: User, liked: bool) -> PostOut:
    return PostOut(
        id=str(p.id),
        author=user_out(author),
        content=p.content,
        media=[],
        like_count=p.like_count,
        comment_count=p.comment_count,
        liked_by_me=liked,
        created_at=p.created_at,
    )


class Ids:
    """Snowflake-like ids (ms since epoch, node, counter), like Plaza's; node 900."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._seq = 0

    def next(self) -> int:
        with self._lock:
            now = int(time.time() * 1000) - 1_600_000_000_000
            if now == self._last:
                self._seq += 1
            else:
                self._last, self._seq = now, 0
            return (now << 22) | (900 << 12) | (self._seq & 0xFFF)


ids = Ids()
engine = create_async_engine(
    os.environ.get("PEER_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres").replace(
        "postgresql://", "postgresql+asyncpg://"
    ),
    pool_size=POOL_SIZE,
    max_overflow=0,
)
Sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_current_user(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> User:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "not authenticated")
    try:
        claims = jwt.decode(
            authorization[7:], SECRET, algorithms=["HS256"], audience="plaza-api", issuer="plaza"
        )
    except jwt.PyJWTError:
        raise HTTPException(401, "invalid token") from None
    user = await session.get(User, int(claims["sub"]))
    if user is None or user.token_version != claims["ver"]:
        raise HTTPException(401, "invalid token")
    return user


UserDep = Annotated[User, Depends(get_current_user)]
app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/feed", response_model=list[PostOut])
async def home_feed(user: UserDep, session: SessionDep, limit: int = 20) -> list[PostOut]:
    followed = select(Follow.followed_id).where(Follow.follower_id == user.id)
    blocked = (
        select(Block.blocked_id)
        .where(Block.blocker_id == user.id)
        .union(select(Block.blocker_id).where(Block.blocked_id == user.id))
    )
    query = (
        select(Post)
        .where(col(Post.deleted_at).is_(None))
        .where(or_(col(Post.author_id) == user.id, col(Post.author_id).in_(followed)))
        .where(col(Post.author_id).not_in(blocked))
        .order_by(col(Post.id).desc())
        .limit(min(limit, 40))
    )
    posts = (await session.exec(query)).all()
    author_ids = {p.author_id for p in posts}
    authors = {
        u.id: u for u in await session.exec(select(User).where(col(User.id).in_(author_ids)))
    }
    liked = set(
        await session.exec(
            select(Like.post_id).where(
                Like.user_id == user.id, col(Like.post_id).in_([p.id for p in posts])
            )
        )
    )
    return [post_out(p, authors[p.author_id], p.id in liked) for p in posts]


@app.post("/api/v1/posts", response_model=PostOut, status_code=201)
async def create_post(data: PostIn, user: UserDep, session: SessionDep) -> PostOut:
    if not 0 < len(data.content) <= 500:
        raise HTTPException(422, "content must be 1 to 500 characters")
    new = Post(id=ids.next(), author_id=user.id, content=data.content, created_at=datetime.now(UTC))
    session.add(new)
    await session.commit()
    return post_out(new, user, False)


@app.post("/api/v1/posts/{post_id}/likes", response_model=PostOut)
async def like_post(post_id: str, user: UserDep, session: SessionDep) -> PostOut:
    found = await session.get(Post, int(post_id))
    if found is None or found.deleted_at is not None:
        raise HTTPException(404, "no such post")
    existing = await session.exec(
        select(Like.id).where(Like.post_id == found.id, Like.user_id == user.id)
    )
    if existing.first() is None:
        session.add(
            Like(id=ids.next(), post_id=found.id, user_id=user.id, created_at=datetime.now(UTC))
        )
        await session.execute(
            update(Post).where(col(Post.id) == found.id).values(like_count=Post.like_count + 1)
        )
        await session.commit()
        await session.refresh(found)
    author = user if found.author_id == user.id else await session.get(User, found.author_id)
    assert author is not None
    return post_out(found, author, True)


@app.post("/api/v1/auth/login", response_model=TokensOut)
async def login(data: LoginIn, session: SessionDep) -> TokensOut:
    found = (
        await session.exec(select(User).where(User.username_lower == data.login.lower()))
    ).first()
    if found is None:
        raise HTTPException(401, "invalid credentials")
    try:
        await run_in_threadpool(hasher.verify, found.password_hash, data.password)
    except VerifyMismatchError:
        raise HTTPException(401, "invalid credentials") from None
    now = datetime.now(UTC)
    family = uuid.uuid4().hex
    refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=hashlib.sha256(refresh.encode()).hexdigest(),
            user_id=found.id,
            family_id=family,
            created_at=now,
            expires_at=now + timedelta(days=30),
        )
    )
    found.last_active_at = now
    await session.commit()
    stamp = int(time.time())
    claims = {
        "iss": "plaza",
        "aud": "plaza-api",
        "sub": str(found.id),
        "iat": stamp,
        "nbf": stamp,
        "exp": stamp + 900,
        "ver": found.token_version,
        "sid": family,
        "jti": uuid.uuid4().hex,
    }
    return TokensOut(
        access_token=jwt.encode(claims, SECRET, algorithm="HS256"),
        refresh_token=refresh,
        token_type="Bearer",
        expires_in=900,
        user=user_out(found),
    )


if __name__ == "__main__":
    serve(app)
