"""Shared pieces of the benchmarks: the server under test, users, sockets, /proc readings
and percentiles. Everything stays on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.clients import User, make_user  # noqa: E402
from tests.support.limits import UNLIMITED_ENV  # noqa: E402
from tests.support.live_server import LiveServer, running_server  # noqa: E402

__all__ = [
    "BENCH_ENV",
    "RESULTS",
    "ROOT",
    "Managed",
    "User",
    "cpu_seconds",
    "create_users",
    "fd_count",
    "gather_limited",
    "hwm_kib",
    "machine_info",
    "managed",
    "median",
    "negotiated_extensions",
    "nofile_limits",
    "open_socket",
    "percentiles",
    "plaza_server",
    "proc_cpu_seconds",
    "raise_nofile",
    "rss_kib",
    "server_nofile",
    "wait_http",
    "write_result",
]

# The harness registers many users and writes many posts from one loopback address, which
# is not what the per-IP / per-user limits are for (the same as the e2e tests' servers).
BENCH_ENV = {
    **UNLIMITED_ENV,
    # Plaza's default is off; on here, so that a client offering permessage-deflate gets
    # it and the harness can measure both (each scenario's client decides).
    "PLAZA_WS_COMPRESSION": "on",
}

T = TypeVar("T")

RESULTS = ROOT / "bench" / "results"


@contextlib.contextmanager
def plaza_server(extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """An embedded `plaza serve` (SQLite + memory backend) in a fresh temporary directory."""
    env = {**BENCH_ENV, **(extra_env or {})}
    with tempfile.TemporaryDirectory(prefix="plaza-bench-") as tmp:
        workdir = Path(tmp)
        with running_server(workdir, env) as live:
            try:
                yield live
            except BaseException:
                log = live.log()
                if log:
                    print("--- server log (tail) ---", file=sys.stderr)
                    print(log[-4000:], file=sys.stderr)
                raise


async def gather_limited(factories: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the coroutines `factories` make, at most `limit` at a time, results in order."""
    slots = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await factory()

    return await asyncio.gather(*(one(f) for f in factories))


async def create_users(
    http: httpx.AsyncClient, api: str, count: int, prefix: str, concurrency: int = 8
) -> list[User]:
    """Register and log in `count` users over REST (each costs two argon2 runs)."""
    return await gather_limited(
        [lambda: make_user(http, api, prefix) for _ in range(count)], concurrency
    )


async def open_socket(
    url: str,
    token: str,
    channels: Sequence[str],
    *,
    compression: bool = True,
    reply_timeout: float = 10.0,
) -> ClientConnection:
    """A raw protocol socket authenticated by header and subscribed to `channels`."""
    conn = await websockets.connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression="deflate" if compression else None,
        open_timeout=reply_timeout,
        max_queue=None,
    )
    try:
        for request_id, channel in enumerate(channels, start=1):
            await conn.send(json.dumps({"id": request_id, "op": "subscribe", "channel": channel}))
            while True:
                reply = json.loads(await asyncio.wait_for(conn.recv(), reply_timeout))
                if reply.get("id") == request_id:
                    break
            if reply.get("ok") is not True:
                raise RuntimeError(f"subscribe {channel!r} failed: {reply}")
    except BaseException:
        await conn.close()
        raise
    return conn


def negotiated_extensions(conn: ClientConnection) -> str:
    """The WebSocket extensions the server accepted (permessage-deflate or none)."""
    response = conn.response
    if response is None:
        return "none"
    return response.headers.get("Sec-WebSocket-Extensions") or "none"


def percentiles(values: Sequence[float], digits: int = 2) -> dict[str, float | int]:
    """count, p50, p90, p99, max and mean of `values` (inclusive quantile method)."""
    if not values:
        return {"count": 0}
    if len(values) == 1:
        v = round(values[0], digits)
        return {"count": 1, "p50": v, "p90": v, "p99": v, "max": v, "mean": v}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "count": len(values),
        "p50": round(cuts[49], digits),
        "p90": round(cuts[89], digits),
        "p99": round(cuts[98], digits),
        "max": round(max(values), digits),
        "mean": round(statistics.fmean(values), digits),
    }


def _status_field(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])  # kB
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB (VmRSS)."""
    return _status_field(pid, "VmRSS")


def hwm_kib(pid: int) -> int:
    """Peak resident set size of `pid` in KiB (VmHWM)."""
    return _status_field(pid, "VmHWM")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def nofile_limits() -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"soft": soft, "hard": hard}


def raise_nofile(needed: int) -> dict[str, Any]:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (at most the hard limit).

    Child processes (the server) inherit it. Returns the limits before and after.
    """
    before = nofile_limits()
    soft, hard = before["soft"], before["hard"]
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    after = nofile_limits()
    return {"needed": needed, "before": before, "after": after, "enough": after["soft"] >= needed}


def server_nofile(pid: int) -> int | None:
    """The server's soft open-files limit, from /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return None if soft == "unlimited" else int(soft)
    return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_mib() -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


_VERSIONED = (
    "litestar",
    "uvicorn",
    "websockets",
    "msgspec",
    "piccolo",
    "asyncpg",
    "argon2-cffi",
    "fastapi",
    "starlette",
    "sqlmodel",
    "sqlalchemy",
    "python-socketio",
)


def machine_info() -> dict[str, Any]:
    # The code under test: results written by this and earlier runs are not part of it.
    status = _git("status", "--porcelain", "--", ".", ":(exclude)bench/results")
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "mem_total_mib": _mem_total_mib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nofile": nofile_limits(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        # The peers' too: a comparison holds for the versions it ran, which move between
        # installs (the bench extra gives lower bounds only).
        "versions": {d: _version(d) for d in _VERSIONED},
    }


# --- a fresh PostgreSQL database and Redis key space per benchmark run ------------------

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def create_database() -> str:
    import asyncpg

    name = f"plaza_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


async def drop_database(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_redis_prefix(prefix: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


def report(result: dict[str, Any], out: Path | None) -> None:
    """Stamp `result` with the machine it ran on, print it, and write it to `out` too."""
    result["machine"] = machine_info()
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


def write_result(name: str, result: dict[str, Any], directory: Path = RESULTS) -> Path:
    """Stamp `result` with the machine and write it to bench/results/<name>.json."""
    result.setdefault("machine", machine_info())
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    return out


def median(values: Sequence[float]) -> float:
    """The median of repetitions (the figure the report quotes)."""
    return statistics.median(values) if values else float("nan")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of every process in `pids`, summed (see proc_cpu_seconds)."""
    return sum(proc_cpu_seconds(pid) for pid in pids)


# --- processes the harness starts: servers under test, peers, load generators -----------


class Managed:
    """A child process with its output in a log file; `stop` ends it (TERM, then KILL)."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str], log: Path, cwd: Path = ROOT):
        self.cmd, self.log_path = list(cmd), log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_http(url: str, proc: Managed | None = None, timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200 (the process under test is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.cmd} exited early:\n{proc.log()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up:\n{proc.log()[-3000:] if proc else ''}")


@contextlib.contextmanager
def managed(
    cmd: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    health: str | None = None,
    log_dir: Path | None = None,
    name: str = "proc",
) -> Iterator[Managed]:
    """Run `cmd` for the length of the block (killed on the way out, also on failure)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with contextlib.ExitStack() as stack:
        directory = log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        proc = Managed(cmd, full_env, directory / f"{name}-{uuid.uuid4().hex[:6]}.log")
        try:
            if health is not None:
                wait_http(health, proc)
            yield proc
        except BaseException:
            tail = proc.log()[-3000:]
            if tail:
                print(f"--- {name} log (tail) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            proc.stop()
