"""REST, Plaza against FastAPI + SQLModel on the same PostgreSQL data: home feed read
(limit 20), post create, like and login, each driven by wrk (a separate process; the
requests come from bench/rest.lua) against one server process at a time.

The data: R readers each follow F of A authors, who hold P posts (default: 200 readers,
100 of 200 authors, 20,000 posts). Every reader has a real argon2id password hash and a
token; likes pick a random (reader, post) pair. Per endpoint and target: requests/s,
p50 / p99 (wrk's), and server CPU-µs per request (utime + stime of the server process from
/proc over wrk's run, divided by the requests wrk completed). Repetitions alternate the
targets; the report quotes medians.

    .venv/bin/python bench/rest.py --seconds 10 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench.common import ROOT, cpu_seconds, managed, median, write_result
from bench.seed import add_follows, add_posts, add_users, mint_tokens, password_hash
from bench.targets import database, plaza_process
from domain.ids import SnowflakeIds
from tests.support.live_server import free_port

ENDPOINTS = ("feed", "like", "post", "login")
TARGETS = ("plaza", "fastapi")
LUA = ROOT / "bench" / "rest.lua"


async def seed(url: str, readers: int, followees: int, authors: int, posts: int) -> list[str]:
    """The graph, and one line per reader for rest.lua: token, login, a random post."""
    ids = SnowflakeIds(node=1003)
    now = datetime.now(UTC)
    rng = random.Random(13)
    author_ids = [ids.next_id() for _ in range(authors)]
    reader_ids = [ids.next_id() for _ in range(readers)]
    post_rows = [(ids.next_id(), author_ids[n % authors]) for n in range(posts)]
    pairs = [(ids.next_id(), r, a) for r in reader_ids for a in rng.sample(author_ids, followees)]
    conn = await asyncpg.connect(url)
    try:
        await add_users(conn, author_ids, now)
        await add_users(conn, reader_ids, now, password_hash())
        await add_follows(conn, pairs, now)
        await add_posts(conn, post_rows, now)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    tokens = mint_tokens(reader_ids, ttl=24 * 3600)
    # Several lines per reader, so likes spread over many posts.
    return [
        f"{tok} u{uid} {rng.choice(post_rows)[0]}"
        for _ in range(20)
        for uid, tok in zip(reader_ids, tokens, strict=True)
    ]


@contextlib.contextmanager
def server(name: str, url: str) -> Iterator[tuple[str, int]]:
    if name == "plaza":
        with plaza_process(url) as served:
            yield served
        return
    port = free_port()
    cmd = [sys.executable, "-m", "bench.peers.fastapi_sqlmodel", "--port", str(port)]
    host = f"http://127.0.0.1:{port}"
    env = {"PEER_DATABASE_URL": url}
    with managed(cmd, env, health=f"{host}/health", name="fastapi") as proc:
        yield host, proc.pid


def wrk(host: str, kind: str, data: Path, seconds: float, connections: int) -> dict[str, Any]:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    env = {**os.environ, "BENCH_REST_KIND": kind, "BENCH_REST_DATA": str(data)}
    done = subprocess.run(
        [binary, "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(LUA), host],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, Any] = json.loads(line[5:])
    return result


def one_target(
    name: str, url: str, data: Path, endpoints: tuple[str, ...], seconds: float, connections: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with server(name, url) as (host, pid):
        wrk(host, "feed", data, 2, connections)  # warm-up: pools, caches, code paths
        for kind in endpoints:
            cpu0 = cpu_seconds([pid])
            r = wrk(host, kind, data, seconds, connections)
            cpu = cpu_seconds([pid]) - cpu0
            ok = r["requests"] - r["status_errors"]
            out[kind] = {
                "requests": r["requests"],
                "errors": r["status_errors"] + r["socket_errors"] + r["timeouts"],
                "requests_per_s": round(r["requests"] / (r["duration_us"] / 1e6), 1),
                "p50_ms": round(r["p50_us"] / 1000, 2),
                "p90_ms": round(r["p90_us"] / 1000, 2),
                "p99_ms": round(r["p99_us"] / 1000, 2),
                "max_ms": round(r["max_us"] / 1000, 2),
                "cpu_us_per_request": round(cpu / ok * 1e6, 1) if ok else None,
                "server_cpu_pct": round(100 * cpu / (r["duration_us"] / 1e6), 1),
            }
    return out


def run(
    *,
    seconds: float = 10.0,
    repeats: int = 3,
    connections: int = 32,
    readers: int = 200,
    followees: int = 100,
    authors: int = 200,
    posts: int = 20_000,
    endpoints: tuple[str, ...] = ENDPOINTS,
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
    with database() as url, tempfile.TemporaryDirectory(prefix="plaza-bench-") as tmp:
        lines = asyncio.run(seed(url, readers, followees, authors, posts))
        data = Path(tmp) / "rest.txt"
        data.write_text("\n".join(lines) + "\n")
        for rep in range(repeats):
            order = TARGETS if rep % 2 == 0 else TARGETS[::-1]  # alternate who goes first
            for name in order:
                print(f"  … rest {name} (repetition {rep + 1})", file=sys.stderr)
                runs[name].append(one_target(name, url, data, endpoints, seconds, connections))
    summary: dict[str, Any] = {}
    for name, rs in runs.items():
        summary[name] = {
            kind: {
                key: round(median([r[kind][key] for r in rs if r[kind][key] is not None]), 2)
                for key in ("requests_per_s", "p50_ms", "p99_ms", "cpu_us_per_request")
            }
            | {"errors": sum(r[kind]["errors"] for r in rs)}
            for kind in endpoints
        }
    ratios = {
        kind: round(
            summary["plaza"][kind]["requests_per_s"] / summary["fastapi"][kind]["requests_per_s"], 2
        )
        for kind in endpoints
    }
    return {
        "scenario": "rest",
        "data": {
            "readers": readers,
            "followees_each": followees,
            "authors": authors,
            "posts": posts,
        },
        "seconds": seconds,
        "connections": connections,
        "repeats": repeats,
        "summary": summary,
        "plaza_over_fastapi_rps": ratios,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--only", nargs="*", choices=ENDPOINTS, default=list(ENDPOINTS))
    parser.add_argument("--out", type=Path, help="also write the whole result here (JSON)")
    args = parser.parse_args(argv)
    result = run(
        seconds=args.seconds,
        repeats=args.repeats,
        connections=args.connections,
        posts=args.posts,
        endpoints=tuple(args.only),
    )
    if args.out:
        write_result(args.out.stem, result, args.out.parent)
    print(
        json.dumps(
            {"summary": result["summary"], "ratios": result["plaza_over_fastapi_rps"]}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
