"""Run every benchmark, write bench/results/latest.json and print a table.

    .venv/bin/python bench/run_all.py            # or: .venv/bin/python -m bench.run_all

Each benchmark starts its own `plaza serve` (embedded: SQLite + memory backend) in a
temporary directory, on 127.0.0.1, and stops it. The default run takes about 90 s on a
2-core machine; `--no-variants` skips the runs without permessage-deflate. Every run is
also kept as bench/results/run-<UTC date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import argon2_cost, idle_memory, ws_latency
from bench.common import ROOT, machine_info

DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"


def _step(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"… {name}", file=sys.stderr, flush=True)
    load = os.getloadavg()
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as error:  # one failing benchmark must not lose the others' figures
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"}
    result["loadavg_before"] = [round(x, 2) for x in load]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return result


def _get(d: dict[str, Any], *path: str) -> Any:
    value: Any = d
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _latency_rows(name: str, r: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "error" in r:
        return [(name, "error", r["error"])]
    lat, rest = r["latency_ms"], r["rest_post_ms"]
    spread = r["fanout_spread_ms"]
    return [
        (
            name,
            f"post→socket, {r['sockets']} sockets x {r['posts']} posts @ {r['rate_per_s']:g}/s",
            f"p50 {lat['p50']} · p90 {lat['p90']} · p99 {lat['p99']} · max {lat['max']} ms",
        ),
        (
            name,
            "deliveries",
            f"{r['deliveries_received']}/{r['deliveries_expected']} ({r['deliveries_pct']}%),"
            f" {r['duplicates']} duplicates",
        ),
        (name, "REST POST /posts", f"p50 {rest['p50']} · p99 {rest['p99']} ms"),
        (
            name,
            "fan-out spread (last - first socket)",
            f"p50 {spread['p50']} · p99 {spread['p99']} ms",
        ),
        (
            name,
            "CPU during the run: server / bench client",
            f"{r['server_cpu_pct_during_run']}% / {r['client_cpu_pct_during_run']}% of one core",
        ),
    ]


def _memory_rows(name: str, r: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "error" in r:
        return [(name, "error", r["error"])]
    return [
        (
            name,
            f"RSS per idle socket ({r['sockets']} sockets, feed + notifications)",
            f"{r['kib_per_idle_socket']} KiB",
        ),
        (
            name,
            "server RSS before / with sockets / after close",
            f"{r['rss_before_kib'] / 1024:.1f} / {r['rss_with_sockets_kib'] / 1024:.1f}"
            f" / {r['rss_after_close_kib'] / 1024:.1f} MiB",
        ),
        (
            name,
            "open files (server) / RLIMIT_NOFILE soft",
            f"{r['fds_with_sockets']} / {r['server_nofile_soft']}",
        ),
        (name, "sockets opened per second", f"{r['sockets_opened_per_s']}"),
    ]


def _argon2_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "error" in r:
        return [("argon2", "error", r["error"])]
    bare, through = r["bare"], r["argon2_hasher"]
    rows = [
        ("argon2", "parameters", bare["parameters"]),
        (
            "argon2",
            "ms per hash / verify (bare, median)",
            f"{bare['hash_ms']['median']} / {bare['verify_ms']['median']} ms",
        ),
        (
            "argon2",
            "ms per hash / verify (Argon2Hasher, median)",
            f"{through['hash_ms']['median']} / {through['verify_ms']['median']} ms",
        ),
    ]
    for run in through["concurrent"]:
        rows.append(
            (
                "argon2",
                f"{run['verifies_per_round']} concurrent verifies, {run['slots']} slot(s)",
                f"median {run['verifies_per_s_median']}/s, best {run['verifies_per_s_best']}/s"
                f" (each waits p50 {run['latency_ms']['p50']} ms)",
            )
        )
    return rows


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = [("benchmark", "metric", "value")]
    for name in ("ws_latency", "ws_latency_no_compression"):
        if name in results:
            rows += _latency_rows(name, results[name])
    for name in ("idle_memory", "idle_memory_no_compression"):
        if name in results:
            rows += _memory_rows(name, results[name])
    if "argon2" in results:
        rows += _argon2_rows(results["argon2"])
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=100, help="latency: sockets")
    parser.add_argument("--posts", type=int, default=200, help="latency: posts")
    parser.add_argument("--rate", type=float, default=20.0, help="latency: posts per second")
    parser.add_argument("--users", type=int, default=100, help="memory: users")
    parser.add_argument("--per-user", type=int, default=10, help="memory: sockets per user")
    parser.add_argument("--samples", type=int, default=20, help="argon2: sequential samples")
    parser.add_argument("--no-variants", action="store_true", help="skip no-deflate runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"machine": machine_info(), "results": {}}
    results: dict[str, Any] = report["results"]
    variants = [True] if args.no_variants else [True, False]
    for compression in variants:
        name = "ws_latency" if compression else "ws_latency_no_compression"
        latency = partial(
            ws_latency.run,
            followers=args.followers,
            posts=args.posts,
            rate=args.rate,
            compression=compression,
        )
        results[name] = _step(name, latency)
    for compression in variants:
        name = "idle_memory" if compression else "idle_memory_no_compression"
        memory = partial(
            idle_memory.run, users=args.users, per_user=args.per_user, compression=compression
        )
        results[name] = _step(name, memory)
    results["argon2"] = _step("argon2", partial(argon2_cost.run, samples=args.samples))
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]

    text = json.dumps(report, indent=2) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    # Every run is also kept under its date: the shared 2-core VMs vary from run to run,
    # and the report quotes the spread, not one lucky or unlucky run.
    stamp = report["machine"]["date_utc"].replace("-", "").replace(":", "")
    archive = args.out.parent / f"run-{stamp}.json"
    archive.write_text(text)

    m = report["machine"]
    sys.stderr.flush()
    print(f"\n{m['date_utc']} · {m['cpus']} CPUs ({m['cpu_model']}) · Python {m['python']}")
    print(table(results))
    print(f"\nwritten to {args.out} and {archive}")
    failed = [k for k, v in results.items() if "error" in v]
    short = [
        k
        for k, v in results.items()
        if k.startswith("ws_latency") and _get(v, "deliveries_pct") not in (None, 100.0)
    ]
    return 1 if failed or short else 0


if __name__ == "__main__":
    raise SystemExit(main())
