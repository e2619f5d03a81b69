"""The session's time limits come from the WebSocket settings; the core that applies them
does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from server.settings import ConfigError, Settings
from server.ws import session
from server.ws.session import Timeouts


def test_timeouts_come_from_the_websocket_settings(tmp_path: Path) -> None:
    defaults = Timeouts.of(Settings.from_env({}, cwd=tmp_path))
    assert defaults == Timeouts(auth=10, stall=40, close=5.0, flush=1.0)
    fast = Settings.from_env(
        {"PLAZA_WS_PING_INTERVAL": "1", "PLAZA_WS_PING_TIMEOUT": "1", "PLAZA_WS_AUTH_TIMEOUT": "2"},
        cwd=tmp_path,
    )
    # The close frame gets as long as a ping's answer, at most 5 s.
    assert Timeouts.of(fast) == Timeouts(auth=2, stall=2, close=1, flush=1.0)


@pytest.mark.parametrize("bad", ["0", "-1", "ten"])
def test_a_bad_auth_timeout_stops_the_server_with_one_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^PLAZA_WS_AUTH_TIMEOUT: must be"):
        Settings.from_env({"PLAZA_WS_AUTH_TIMEOUT": bad}, cwd=tmp_path)


def test_the_core_does_no_io() -> None:
    """Sans-I/O: the session core imports no event loop, web framework or socket."""
    tree = ast.parse(Path(session.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"anyio", "asyncio", "litestar", "socket", "uvicorn", "websockets"}
