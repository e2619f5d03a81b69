"""Server memory per idle WebSocket: RSS of `plaza serve` before and after K idle sockets.

U users each open S sockets (S ≤ the per-user limit of 10), authenticated by header and
subscribed to `feed` and `notifications`, then sit idle. RSS (VmRSS of the server process)
is read after a settle period before opening and after opening them; the difference over
K = U x S is the cost of one idle, authenticated, twice-subscribed socket: the uvicorn
connection and its websockets protocol state, the session task, its send queue and the
hub memberships. RSS after closing them all is reported too (CPython and glibc keep much
of the freed memory, so it does not fall back to the baseline).

    .venv/bin/python bench/idle_memory.py --users 100 --per-user 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.common import (
    create_users,
    fd_count,
    gather_limited,
    hwm_kib,
    negotiated_extensions,
    open_socket,
    plaza_server,
    raise_nofile,
    rss_kib,
    server_nofile,
)
from tests.support.live_server import LiveServer

CHANNELS = ("feed", "notifications")
MAX_PER_USER = 10  # PLAZA_WS_MAX_SOCKETS_PER_USER's default; more would be closed with 4029
# Descriptors beyond the sockets: the interpreter, SQLite, logs, the HTTP pool, slack.
FD_HEADROOM = 256


async def measure(
    live: LiveServer, *, users: int, per_user: int, settle: float, compression: bool
) -> dict[str, Any]:
    assert live.proc is not None
    pid = live.proc.pid
    sockets = users * per_user
    async with httpx.AsyncClient(timeout=30) as http:
        t = time.perf_counter()
        people = await create_users(http, live.api, users + 1, "idle")
        register_s = time.perf_counter() - t
        warm_user = people.pop()

    # Warm-up: the first sockets load code paths and fill caches once for the process;
    # that one-time cost is not per socket, so pay it before the baseline.
    warm = await gather_limited(
        [
            partial(open_socket, live.ws_url, warm_user.token, CHANNELS, compression=compression)
            for _ in range(per_user)
        ],
        per_user,
    )
    for c in warm:
        await c.close()
    await asyncio.sleep(settle)
    rss_before = rss_kib(pid)
    fds_before = fd_count(pid)

    t = time.perf_counter()
    conns = await gather_limited(
        [
            partial(open_socket, live.ws_url, u.token, CHANNELS, compression=compression)
            for u in people
            for _ in range(per_user)
        ],
        50,
    )
    open_s = time.perf_counter() - t
    extensions = negotiated_extensions(conns[0]) if conns else "none"
    try:
        await asyncio.sleep(settle)
        rss_after = rss_kib(pid)
        fds_after = fd_count(pid)
        still_open = sum(1 for c in conns if c.close_code is None)
        peak = hwm_kib(pid)
    finally:
        await gather_limited([c.close for c in conns], 100)
    await asyncio.sleep(settle)
    rss_closed = rss_kib(pid)
    fds_closed = fd_count(pid)

    grown = rss_after - rss_before
    return {
        "users": users,
        "sockets_per_user": per_user,
        "sockets": sockets,
        "sockets_open_after_settle": still_open,
        "channels_per_socket": list(CHANNELS),
        "compression": extensions,
        "settle_s": settle,
        "rss_before_kib": rss_before,
        "rss_with_sockets_kib": rss_after,
        "rss_after_close_kib": rss_closed,
        "rss_peak_kib": peak,
        "kib_per_idle_socket": round(grown / sockets, 1) if sockets else None,
        "fds_before": fds_before,
        "fds_with_sockets": fds_after,
        "fds_after_close": fds_closed,
        "open_sockets_s": round(open_s, 2),
        "sockets_opened_per_s": round(sockets / open_s, 1) if open_s else None,
        "register_login_s": round(register_s, 2),
        "server_nofile_soft": server_nofile(pid),
    }


def run(
    *,
    users: int = 100,
    per_user: int = 10,
    settle: float = 3.0,
    compression: bool = True,
    time_limit: float = 300.0,
) -> dict[str, Any]:
    if not 1 <= per_user <= MAX_PER_USER or not 1 <= users <= 2000:
        raise ValueError(f"1 ≤ per_user ≤ {MAX_PER_USER} and 1 ≤ users ≤ 2000, please")
    # Each socket is one descriptor in the server and one in this client; the server is
    # started after this and inherits the raised limit.
    nofile = raise_nofile(users * per_user + (per_user + FD_HEADROOM))
    if not nofile["enough"]:
        raise RuntimeError(f"RLIMIT_NOFILE hard limit too low for {users * per_user}: {nofile}")
    started = time.perf_counter()
    with plaza_server() as live:

        async def bounded() -> dict[str, Any]:
            return await asyncio.wait_for(
                measure(
                    live, users=users, per_user=per_user, settle=settle, compression=compression
                ),
                time_limit,
            )

        result = asyncio.run(bounded())
    result["nofile"] = nofile
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=10, help=f"≤ {MAX_PER_USER}")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before reading")
    parser.add_argument("--no-compression", action="store_true", help="no permessage-deflate")
    parser.add_argument("--time-limit", type=float, default=300.0, help="abort after (s)")
    args = parser.parse_args(argv)
    result = run(
        users=args.users,
        per_user=args.per_user,
        settle=args.settle,
        compression=not args.no_compression,
        time_limit=args.time_limit,
    )
    print(json.dumps(result, indent=2))
    return 0 if result["sockets_open_after_settle"] == result["sockets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
