"""Pins the public API of the channels modules (as websockets' test_exports does)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "channels.backend": ["ChannelBackend", "Listener", "Position", "parse_offset"],
    "channels.memory": [
        "DEFAULT_HISTORY_SIZE",
        "DEFAULT_MAX_BYTES",
        "DEFAULT_MAX_CHANNELS",
        "MemoryBackend",
    ],
    "channels.hub": ["Hub", "SubscribeResult", "Subscriber", "SubscriberClosed"],
    "channels.queue": ["QueueClosed", "QueueLost", "QueueOverflowed", "SendQueue"],
    "channels.protocol": ["SubscribeResult", "encode_push"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_live_layer_imports_no_storage_or_server() -> None:
    import ast
    import pathlib

    root = pathlib.Path(importlib.import_module("channels").__file__ or "").parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"storage", "server", "litestar"}, (path, name)
