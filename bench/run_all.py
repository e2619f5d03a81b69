"""Run every scenario of the benchmark, Plaza against its peers, and write the results.

    .venv/bin/python -m bench.run_all --quick   # smoke run, a few minutes (make bench-quick)
    .venv/bin/python -m bench.run_all           # every scenario, ~20 minutes (make bench)

Each scenario writes bench/results/<scenario>.json; the whole run is also written to
bench/results/latest.json, which bench/report.py renders as BENCHMARKS.md. A scenario
that fails records its error and the others still run. Every server, peer and load
generator is started here and stopped before the next scenario; every database and Redis
key prefix made for a scenario is dropped after it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import argon2_cost, delivery, feed, fleet, idle_memory, rest, resume
from bench.common import RESULTS, machine_info, write_result

# Sizes per profile. quick: one repetition of everything at small sizes, to show the
# harness works end to end; full: the sizes, medians of several repetitions.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "rest": {"seconds": 3, "repeats": 1},
        "idle": [1000],
        "idle_window_s": 3.0,
        "delivery": [(200, 30, 10.0, 1)],
        "delivery_fleet": [(200, 20, 10.0, 1)],
        "fanout": (2000, 3),
        "resume": 300,
        "eventlog": (3000, 1),
        "argon2_samples": 5,
    },
    "full": {
        "rest": {"seconds": 8, "repeats": 3},
        "idle": [5000, 10_000],  # one server per compression mode, measured at each
        "idle_window_s": 22.0,  # past one 20 s ping round
        "delivery": [
            (100, 60, 10.0, 1),
            (200, 40, 10.0, 3),
            (1000, 20, 5.0, 1),
            (5000, 10, 2.0, 1),
        ],
        "delivery_fleet": [(200, 30, 10.0, 1), (1000, 20, 5.0, 1)],
        "fanout": (10_000, 10),
        "resume": 2000,
        "eventlog": (10_000, 2),
        "argon2_samples": 20,
    },
}


def _idle(**kwargs: Any) -> dict[str, Any]:
    return {"steps": idle_memory.run_steps(**kwargs)}


def _step(name: str, fn: Callable[[], dict[str, Any]], command: str) -> dict[str, Any]:
    print(f"… {name}", file=sys.stderr, flush=True)
    load = os.getloadavg()
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as error:  # one failing scenario must not lose the others' figures
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"[:2000]}
    result["command"] = command
    result["loadavg_before"] = [round(x, 2) for x in load]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    write_result(name, result)
    print(f"  done in {result['wall_s']} s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smoke profile")
    parser.add_argument("--only", nargs="*", help="scenario names (rest, idle, delivery, ...)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    profile = "quick" if args.quick else "full"
    p = PROFILES[profile]
    invoked = "make bench-quick" if args.quick else "make bench"
    started = time.perf_counter()
    machine = machine_info()
    machine["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    steps: list[tuple[str, Callable[[], dict[str, Any]], str]] = []
    steps.append(
        (
            "rest",
            partial(rest.run, **p["rest"]),
            f"bench/rest.py --seconds {p['rest']['seconds']} --repeats {p['rest']['repeats']}",
        )
    )
    for deflate in (True, False):
        mode = "deflate" if deflate else "plain"
        steps_n = p["idle"]
        fn: Callable[[], dict[str, Any]] = partial(
            _idle, steps=steps_n, idle=p["idle_window_s"], compression=deflate
        )
        cmd = f"bench/idle_memory.py --steps {' '.join(map(str, steps_n))}"
        cmd += f" --idle {p['idle_window_s']}" + ("" if deflate else " --no-compression")
        steps.append((f"idle-{mode}", fn, cmd))
    for followers, posts, rate, repeats in p["delivery"]:
        fn = partial(delivery.run, followers=followers, posts=posts, rate=rate, repeats=repeats)
        cmd = f"bench/delivery.py --followers {followers} --posts {posts} --rate {rate}"
        cmd += f" --repeats {repeats}"
        steps.append((f"delivery-{followers}", fn, cmd))
    for followers, posts, rate, repeats in p["delivery_fleet"]:
        fn = partial(
            delivery.run, followers=followers, posts=posts, rate=rate, repeats=repeats, fleet=True
        )
        cmd = f"bench/delivery.py --fleet --followers {followers} --posts {posts} --rate {rate}"
        steps.append((f"delivery-fleet-{followers}", fn, cmd))
    followers, posts = p["fanout"]
    steps.append(
        (
            "fanout",
            lambda: feed.run_fanout(followers, posts),
            f"bench/feed.py fanout --followers {followers} --posts {posts}",
        )
    )
    steps.append(
        (
            "resume",
            partial(resume.run, sockets=p["resume"]),
            f"bench/resume.py --sockets {p['resume']}",
        )
    )
    events, repeats = p["eventlog"]
    steps.append(
        (
            "eventlog",
            partial(fleet.throughput, events, repeats, 300.0),
            f"bench/fleet.py throughput --events {events} --repeats {repeats}",
        )
    )
    steps.append(
        (
            "argon2",
            partial(argon2_cost.run, samples=p["argon2_samples"]),
            f"bench/argon2_cost.py --samples {p['argon2_samples']}",
        )
    )
    results: dict[str, Any] = {}
    for name, fn, cmd in steps:
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        result = _step(name, fn, cmd)
        if name.startswith("idle-") and "steps" in result:
            # One entry per socket count: idle-<n>-<mode>, as the report reads them.
            for one in result.pop("steps"):
                one.update({k: result[k] for k in ("command", "loadavg_before", "loadavg_after")})
                results[f"idle-{one['sockets']}-{name.split('-', 1)[1]}"] = one
        else:
            results[name] = result
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {
        "profile": profile,
        "invoked_as": invoked,
        "argv": shlex.join([sys.executable, "-m", "bench.run_all", *(argv or sys.argv[1:])]),
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": machine,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out} in {report['wall_s']} s", file=sys.stderr)
    failed = [k for k, v in results.items() if "error" in v]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
