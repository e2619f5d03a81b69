"""Run a real `plaza serve` process on a free loopback port (e2e tests of REST, SDK, WS).

    with running_server(tmp_path, env={"PLAZA_...": "..."}) as base_url:
        httpx.get(f"{base_url}/api/v1/health")

The process runs in `tmp_path` (its ./var holds the SQLite file, secret key and media),
with PLAZA_* variables of the calling environment removed so a developer's or CI's
settings never leak in; pass what the test needs in `env`. Its output goes to
`tmp_path/server.log`, shown in the error when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
# Cold start imports litestar, piccolo and Pillow and migrates a fresh SQLite file: a few
# seconds on a slow CI machine; 30 s only bounds a hang.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLAZA_")}
    clean["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    clean["PYTHONUNBUFFERED"] = "1"
    clean.update(env or {})
    return clean


@contextlib.contextmanager
def running_server(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Start `python -m server.cli serve`, wait for /api/v1/health, yield the base URL
    (`http://127.0.0.1:PORT`), then stop it (SIGTERM, then SIGKILL after a grace time)."""
    port = free_port()
    log_path = tmp_path / "server.log"
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=server_env(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_healthy(process, base_url, log_path)
            yield base_url
        finally:
            _stop(process)


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"plaza serve exited with {process.returncode}:\n{log_path.read_text()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/api/v1/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"plaza serve did not become healthy:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
