"""The `plaza` console script: config errors, worker refusal, migrate."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from server.cli import _StripQuery, main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("PLAZA_DATABASE_URL", "PLAZA_REDIS_URL", "PLAZA_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
def test_bad_config_is_one_line_and_exit_2(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    monkeypatch.setenv("PLAZA_DATABASE_URL", "mysql://nope")
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("plaza: PLAZA_DATABASE_URL: ")


def test_worker_needs_the_shared_event_log(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("plaza: worker: PLAZA_REDIS_URL is unset")


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_fleet_on_sqlite_is_refused_in_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    monkeypatch.setenv("PLAZA_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "plaza: PLAZA_REDIS_URL: a fleet needs PostgreSQL"
    )


def test_migrate_creates_the_database(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAZA_DATABASE_URL", f"sqlite:///{workdir / 'x.db'}")
    assert main(["migrate"]) == 0
    assert (workdir / "x.db").exists()
    assert main(["migrate"]) == 0  # idempotent


def test_uvicorn_websocket_lines_lose_their_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/v1/ws?token=secret"),
        None,
    )
    assert _StripQuery().filter(record)
    assert "secret" not in record.getMessage()
    assert "/api/v1/ws" in record.getMessage()
