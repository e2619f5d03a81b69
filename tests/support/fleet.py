"""A fleet on loopback for end-to-end tests: real `plaza serve` and `plaza worker`
processes on one PostgreSQL database and one Redis (the shared one under a key prefix of
the test's own, or a private redis-server the test may break)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.limits import UNLIMITED_ENV
from tests.support.live_server import LiveServer

SECRET = "fleet-test-secret-" + "k" * 40
# Tests create many users from one loopback address and write far faster than people.
LIMITS = UNLIMITED_ENV


def base_env(database_url: str, redis_url: str | None, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAZA_")}
    env.update(LIMITS)
    env["PYTHONUNBUFFERED"] = "1"
    env["PLAZA_DATABASE_URL"] = database_url
    env["PLAZA_SECRET_KEY"] = SECRET
    if redis_url is not None:
        env["PLAZA_REDIS_URL"] = redis_url
        env["PLAZA_REDIS_PREFIX"] = prefix
    return env


@dataclass
class WorkerProcess:
    workdir: Path
    env: dict[str, str]
    name: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"worker-{self.name}.log"

    def start(self, timeout: float = 20.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "worker"],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"plaza worker exited early:\n{self.log()}")
            if " started" in self.log():
                return
            time.sleep(0.05)
        raise RuntimeError(f"plaza worker did not start:\n{self.log()}")

    def kill9(self) -> None:
        """SIGKILL: no goodbye, no release of what it holds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Fleet:
    workdir: Path
    env: dict[str, str]
    servers: list[LiveServer] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", "migrate"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()

    def add_server(self) -> LiveServer:
        from tests.support.live_server import free_port

        server = LiveServer(self.workdir, free_port(), dict(self.env))
        server.start()
        self.servers.append(server)
        return server

    def add_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.workdir, dict(self.env), uuid.uuid4().hex[:6])
        worker.start()
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        parts = [f"--- server {s.port}\n{s.log()}" for s in self.servers]
        parts += [f"--- worker {w.name}\n{w.log()}" for w in self.workers]
        return "\n".join(parts)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for server in self.servers:
            server.stop()


@contextmanager
def running_fleet(
    workdir: Path,
    database_url: str,
    redis_url: str,
    *,
    servers: int = 2,
    workers: int = 2,
    prefix: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Fleet]:
    key_prefix = prefix or f"fleet-{uuid.uuid4().hex[:8]}:"
    env = base_env(database_url, redis_url, key_prefix)
    env.update(extra_env or {})
    fleet = Fleet(workdir, env)
    fleet.migrate()
    try:
        for _ in range(servers):
            fleet.add_server()
        for _ in range(workers):
            fleet.add_worker()
        yield fleet
    finally:
        fleet.stop()
        drop_keys(redis_url, key_prefix)


def drop_keys(redis_url: str, prefix: str) -> None:
    """The fleet's key space goes with it (the shared Redis keeps nothing of a test)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    except redis.RedisError:
        pass  # a fault test's private Redis may be gone already
    finally:
        client.close()
