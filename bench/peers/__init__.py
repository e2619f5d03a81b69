"""The systems a user would otherwise pick, each a small app doing the work Plaza does in
a scenario, on the same data. Every peer runs under the uvicorn settings `plaza serve`
uses (server/cli.py), so the server loop, HTTP parser and WebSocket implementation are
the same for all: only the framework above them differs."""

from __future__ import annotations

import argparse
import time
from itertools import count
from typing import Any

# What `plaza serve` passes to uvicorn.Config (server/cli.py), less the app.
UVICORN_SETTINGS: dict[str, Any] = {
    "host": "127.0.0.1",
    "ws_max_size": 64 * 1024,
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
    "lifespan": "on",
    "ws_ping_interval": 20,
    "ws_ping_timeout": 20,
    "log_level": "warning",
}

# A post as every peer returns and pushes it: the shape of Plaza's PostView.
FILLER_AUTHOR = {
    "id": "1",
    "username": "author",
    "display_name": "author",
    "bio": "",
    "avatar_media_id": None,
    "created_at": "2026-01-01T00:00:00Z",
}


_IDS = count(1)


def filler_post(content: str) -> dict[str, Any]:
    """A new post of `content` by FILLER_AUTHOR, with this process's next id."""
    return {
        "id": str(next(_IDS)),
        "author": FILLER_AUTHOR,
        "content": content,
        "media": [],
        "like_count": 0,
        "comment_count": 0,
        "liked_by_me": False,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def serve(app: Any, argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(app, port=args.port, **UVICORN_SETTINGS)
