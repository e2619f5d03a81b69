"""Where Plaza's server spends its CPU in a scenario, sampled with py-spy, written to
bench/results/profile.json (bench/report.py shows its top frames in BENCHMARKS.md).

    python3 -m pip install --target /tmp/pyspy py-spy      # once; or any py-spy on PATH
    PY_SPY=/tmp/pyspy/bin/py-spy .venv/bin/python -m bench.profile delivery --followers 200
    PY_SPY=/tmp/pyspy/bin/py-spy .venv/bin/python -m bench.profile feed --seconds 10

delivery: the delivery scenario against Plaza embedded (bench/delivery.py), py-spy on the
server during the measured posts only. resume: the resume storm (bench/resume.py),
py-spy during the reconnect. feed: wrk on `GET /feed` (bench/rest.py's data).
The table is inclusive: the share of samples with a function anywhere on the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, ROOT, raise_nofile

# Frames that are on every stack (the loop, uvicorn's plumbing) say nothing.
BORING = ("run_forever", "_run_once", "_run (asyncio", "<module>", "run (uvicorn", "serve (")


def _py_spy() -> str:
    found = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy not found: set PY_SPY or put it on PATH (see the docstring)")
    return found


@contextlib.contextmanager
def sampling(pid: int, out: Path, rate: int = 250) -> Iterator[None]:
    """py-spy recording `pid` (collapsed stacks into `out`) for the length of the block."""
    proc = subprocess.Popen(
        [
            _py_spy(),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(out),
            "--rate",
            str(rate),
            "--nonblocking",
            "--full-filenames",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached
    try:
        yield
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _short(frame: str) -> tuple[str, str]:
    function, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    where = where.replace(str(ROOT) + "/", "").split("site-packages/", 1)[-1]
    return function, where


def top_frames(
    collapsed: Path, limit: int = 25
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """Total samples; the top functions inclusive (on the stack) and by self time (leaf)."""
    inclusive: Counter[tuple[str, str]] = Counter()
    leaf: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        leaf[frames[-1]] += n

    def rows(counter: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
        out = []
        for (function, where), n in counter.most_common():
            pct = 100 * n / max(1, total)
            # Frames on (nearly) every stack are the interpreter's and the loop's plumbing.
            if pct > 80 or any(b in f"{function} ({where}" for b in BORING):
                continue
            out.append({"function": function, "where": where, "pct": round(pct, 1)})
            if len(out) >= limit:
                break
        return out

    return total, rows(inclusive), rows(leaf)


def delivery(followers: int, posts: int, rate: float) -> dict[str, Any]:
    from bench.delivery import measure
    from bench.targets import plaza_embedded

    raise_nofile(followers * 2 + 512)
    with tempfile.TemporaryDirectory() as tmp, plaza_embedded(followers) as t:
        out = Path(tmp) / "stacks.txt"
        result = asyncio.run(
            measure(t, posts, rate, drain=30.0, around=lambda: sampling(t.pids[0], out))
        )
        total, rows, leaves = top_frames(out)
    return {
        "self": leaves,
        "what": f"Live delivery, Plaza embedded, {followers} followers, {posts} posts at {rate}/s"
        f" ({result['cpu_us_per_delivery']} CPU-µs per delivery under the profiler)",
        "command": f"bench/profile.py delivery --followers {followers} --posts {posts}"
        f" --rate {rate}",
        "samples": total,
        "top": rows,
    }


def feed(seconds: float) -> dict[str, Any]:
    from bench.rest import seed, wrk
    from bench.targets import database, plaza_process

    with database() as url, tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rest.txt"
        data.write_text("\n".join(asyncio.run(seed(url, 200, 100, 200, 20_000))) + "\n")
        out = Path(tmp) / "stacks.txt"
        with plaza_process(url) as (host, pid):
            wrk(host, "feed", data, 2, 32)
            with sampling(pid, out):
                r = wrk(host, "feed", data, seconds, 32)
        total, rows, leaves = top_frames(out)
    return {
        "self": leaves,
        "what": f"GET /feed under wrk (32 connections, {seconds:g} s, {r['requests']} requests)",
        "command": f"bench/profile.py feed --seconds {seconds:g}",
        "samples": total,
        "top": rows,
    }


def resume(sockets: int) -> dict[str, Any]:
    from bench.resume import measure
    from bench.targets import plaza_embedded

    raise_nofile(sockets * 2 + 512)
    with tempfile.TemporaryDirectory() as tmp, plaza_embedded(sockets) as t:
        out = Path(tmp) / "stacks.txt"
        result = asyncio.run(measure(t, 5, 5, 60.0, around=lambda: sampling(t.pids[0], out)))
        total, rows, leaves = top_frames(out)
    return {
        "self": leaves,
        "what": f"Resume storm, {sockets} sockets reconnecting at once"
        f" (all current after {result['all_current_s']} s under the profiler)",
        "command": f"bench/profile.py resume --sockets {sockets}",
        "samples": total,
        "top": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    d = sub.add_parser("delivery")
    d.add_argument("--followers", type=int, default=200)
    d.add_argument("--posts", type=int, default=60)
    d.add_argument("--rate", type=float, default=10.0)
    f = sub.add_parser("feed")
    f.add_argument("--seconds", type=float, default=10.0)
    r = sub.add_parser("resume")
    r.add_argument("--sockets", type=int, default=2000)
    for p in (d, f, r):
        p.add_argument("--out", type=Path, help="default: bench/results/profile-<scenario>.json")
        p.add_argument("--note", action="append", default=[], help="a finding, kept with it")
        p.add_argument("--label", default="", help="appended to the description")
    args = parser.parse_args(argv)
    if args.scenario == "delivery":
        result = delivery(args.followers, args.posts, args.rate)
    elif args.scenario == "resume":
        result = resume(args.sockets)
    else:
        result = feed(args.seconds)
    result["what"] += args.label
    result["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["notes"] = args.note
    out = args.out or RESULTS / f"profile-{args.scenario}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for title in ("top", "self"):
        print(f"-- {title}")
        for row in result[title]:
            print(f"{row['pct']:5.1f}%  {row['function']}  {row['where']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
