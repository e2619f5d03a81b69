"""The servers the live scenarios measure, each started for the length of a `with` block
on 127.0.0.1 with everything it needs (database, seeded followers, tokens) and stopped
after, also on failure: Plaza embedded (one `plaza serve` on PostgreSQL, in-process event
log and channels), the Plaza fleet (2 `plaza serve` + `plaza worker`, PostgreSQL + Redis)
and the peers of bench/peers/ (one process each, or two sharing Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    BENCH_ENV,
    REDIS_URL,
    Managed,
    create_database,
    drop_database,
    drop_redis_prefix,
    managed,
)
from bench.seed import author_with_followers, migrate, mint_tokens
from tests.support.fleet import Fleet, base_env
from tests.support.live_server import free_port

__all__ = [
    "KINDS",
    "Target",
    "database",
    "plaza_embedded",
    "plaza_fleet",
    "plaza_process",
    "target",
]

KINDS = ("floor", "litestar", "socketio", "plaza")


@dataclass
class Target:
    """One system under test: where posts go, what each follower's socket connects to."""

    name: str
    kind: str  # the wsclients protocol
    post_url: str
    socket_urls: list[str]
    pids: list[int]
    post_headers: dict[str, str] = field(default_factory=dict)
    tokens: list[str | None] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    db_url: str | None = None
    follower_ids: list[int] = field(default_factory=list)
    author_id: int | None = None

    def specs(self) -> list[tuple[str, str | None, list[str]]]:
        urls = self.socket_urls
        return [(urls[n % len(urls)], tok, self.channels) for n, tok in enumerate(self.tokens)]


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database with Plaza's schema, dropped afterwards."""
    url = asyncio.run(create_database())
    try:
        migrate(url)
        yield url
    finally:
        asyncio.run(drop_database(url))


def _plaza_target(
    name: str, url: str, api_hosts: list[str], pids: list[int], followers: int, channels: list[str]
) -> Target:
    author, fans = asyncio.run(author_with_followers(url, followers))
    author_token, *fan_tokens = mint_tokens([author, *fans])
    return Target(
        name=name,
        kind="plaza",
        post_url=f"{api_hosts[0]}/api/v1/posts",
        socket_urls=[h.replace("http://", "ws://") + "/api/v1/ws" for h in api_hosts],
        pids=pids,
        post_headers={"Authorization": f"Bearer {author_token}"},
        tokens=list(fan_tokens),
        channels=channels,
        db_url=url,
        follower_ids=fans,
        author_id=author,
    )


@contextlib.contextmanager
def plaza_process(url: str, extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """One embedded `plaza serve` on the PostgreSQL database `url` (migrated): its base URL
    and pid."""
    with tempfile.TemporaryDirectory(prefix="plaza-bench-") as tmp:
        port = free_port()
        env = {**base_env(url, None, ""), **BENCH_ENV, **(extra_env or {})}
        cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
        host = f"http://127.0.0.1:{port}"
        with managed(
            cmd, env, health=f"{host}/api/v1/health", log_dir=Path(tmp), name="plaza"
        ) as proc:
            yield host, proc.pid


@contextlib.contextmanager
def plaza_embedded(
    followers: int,
    *,
    channels: tuple[str, ...] = ("feed",),
    extra_env: dict[str, str] | None = None,
) -> Iterator[Target]:
    """One `plaza serve` on a fresh PostgreSQL database, no Redis: the in-process event log
    and memory channels (the embedded mode, on the database the peers use)."""
    with database() as url, plaza_process(url, extra_env) as (host, pid):
        yield _plaza_target("plaza", url, [host], [pid], followers, list(channels))


@contextlib.contextmanager
def plaza_fleet(followers: int, *, workers: int = 1) -> Iterator[Target]:
    """2 `plaza serve` + `workers` `plaza worker` on PostgreSQL and Redis."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    with database() as url, tempfile.TemporaryDirectory(prefix="plaza-bench-") as tmp:
        fleet = Fleet(Path(tmp), {**base_env(url, REDIS_URL, prefix), **BENCH_ENV})
        try:
            servers = [fleet.add_server(), fleet.add_server()]
            for _ in range(workers):
                fleet.add_worker()
            pids = [s.proc.pid for s in servers if s.proc is not None]
            pids += [w.proc.pid for w in fleet.workers if w.proc is not None]
            hosts = [s.base_url for s in servers]
            yield _plaza_target("plaza fleet", url, hosts, pids, followers, ["feed"])
        except BaseException:
            print(fleet.logs()[-4000:], file=sys.stderr)
            raise
        finally:
            fleet.stop()
            asyncio.run(drop_redis_prefix(prefix))


@contextlib.contextmanager
def _peer(module: str, followers: int, processes: int, redis: bool) -> Iterator[Target]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    kind = module.rsplit("_", 1)[0] if module != "socketio_app" else "socketio"
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plaza-bench-")))
        procs: list[Managed] = []
        hosts: list[str] = []
        for _ in range(processes):
            port = free_port()
            cmd = [sys.executable, "-m", f"bench.peers.{module}", "--port", str(port)]
            if redis:
                cmd += ["--redis", REDIS_URL, "--prefix", prefix]
            host = f"http://127.0.0.1:{port}"
            procs.append(
                stack.enter_context(
                    managed(cmd, {}, health=f"{host}/health", log_dir=tmp, name=module)
                )
            )
            hosts.append(host)
        path = "/socket.io" if kind == "socketio" else "/ws"
        socket_urls = [
            h.replace("http://", "ws://") + ("" if kind == "socketio" else path) for h in hosts
        ]
        try:
            yield Target(
                name=kind if processes == 1 else f"{kind} x{processes}",
                kind=kind,
                post_url=f"{hosts[0]}/posts",
                socket_urls=socket_urls,
                pids=[p.pid for p in procs],
                tokens=[None] * followers,
            )
        finally:
            if redis:
                asyncio.run(drop_redis_prefix(prefix))


@contextlib.contextmanager
def target(kind: str, followers: int, *, fleet: bool = False) -> Iterator[Target]:
    """The target `kind` (one of KINDS) with `followers` sockets' worth of setup;
    `fleet` = two processes sharing Redis (not for the floor, which has no such mode)."""
    if kind == "plaza":
        with plaza_fleet(followers) if fleet else plaza_embedded(followers) as t:
            yield t
    elif kind == "floor":
        if fleet:
            raise ValueError("the floor has no multi-process mode")
        with _peer("floor", followers, 1, redis=False) as t:
            yield t
    elif kind == "litestar":
        with _peer("litestar_channels", followers, 2 if fleet else 1, redis=fleet) as t:
            yield t
    elif kind == "socketio":
        with _peer("socketio_app", followers, 2 if fleet else 1, redis=True) as t:
            yield t
    else:
        raise ValueError(kind)
