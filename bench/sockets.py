"""Drive several bench/wsclients.py processes at once: the WebSocket load generators.

Each process gets a share of the sockets; every command goes to all of them and their
answers come back as a list. The processes inherit the raised RLIMIT_NOFILE and raise
their own soft limit to the hard one."""

from __future__ import annotations

import asyncio
import json
import sys
from types import TracebackType
from typing import Any

from bench.common import ROOT

__all__ = ["SocketFleet"]


class SocketFleet:
    """`processes` load generators for the sockets of `kind` (plaza, litestar, socketio,
    floor), used as `async with SocketFleet(...) as fleet: await fleet.open(specs)`."""

    def __init__(self, kind: str, processes: int, *, compression: bool = False) -> None:
        self.kind, self.count, self.compression = kind, max(1, processes), compression
        self.procs: list[asyncio.subprocess.Process] = []
        self.sizes: list[int] = []

    async def __aenter__(self) -> SocketFleet:
        for _ in range(self.count):
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.wsclients",
                    cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=1 << 28,
                )
            )
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()

    async def _ask(self, proc: asyncio.subprocess.Process, cmd: dict[str, Any]) -> Any:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a load generator died during {cmd['op']}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"load generator: {answer['error']}")
        return answer

    async def all(self, cmd: dict[str, Any]) -> list[Any]:
        return list(await asyncio.gather(*(self._ask(p, cmd) for p in self.procs)))

    async def open(
        self, specs: list[tuple[str, str | None, list[str]]], concurrency: int = 50
    ) -> dict[str, Any]:
        """Connect `specs` (url, token, channels), dealt round-robin over the processes."""
        shares: list[list[Any]] = [[] for _ in self.procs]
        for n, spec in enumerate(specs):
            shares[n % len(shares)].append(list(spec))
        self.sizes = [len(s) for s in shares]
        per = max(1, concurrency // len(self.procs))
        answers = await asyncio.gather(
            *(
                self._ask(
                    p,
                    {
                        "op": "open",
                        "kind": self.kind,
                        "compression": self.compression,
                        "sockets": share,
                        "concurrency": per,
                    },
                )
                for p, share in zip(self.procs, shares, strict=True)
            )
        )
        return {
            "opened": sum(a["opened"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "errors": [e for a in answers for e in a["errors"]][:3],
            "seconds": max(a["seconds"] for a in answers),
            "extensions": answers[0]["extensions"],
        }

    async def wait(self, seqs: list[int], timeout: float) -> dict[str, Any]:
        answers = await self.all({"op": "wait", "seqs": seqs, "timeout": timeout})
        return {
            "short": sum(a["short"] for a in answers),
            "all_current_at": max(a["all_current_at"] for a in answers),
        }

    async def arrivals(self) -> tuple[list[dict[int, float]], int, int]:
        """Per socket {post number: arrival}, duplicates, sockets closed."""
        answers = await self.all({"op": "arrivals"})
        per_socket = [dict((int(s), t) for s, t in a) for ans in answers for a in ans["arrivals"]]
        return (
            per_socket,
            sum(a["duplicates"] for a in answers),
            sum(a["closed"] for a in answers),
        )

    async def drop(self) -> None:
        """Every connection aborted at once (no close handshake), as a network cut would."""
        await self.all({"op": "drop"})

    async def resume(self) -> dict[str, Any]:
        """Every socket reconnects at once, subscribing with `since` its last offset."""
        answers = await self.all({"op": "resume", "concurrency": 100_000})
        return {
            "opened": sum(a["opened"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "errors": [e for a in answers for e in a["errors"]][:3],
            "started": min(a["started"] for a in answers),
        }

    async def close(self) -> None:
        await self.all({"op": "close"})
