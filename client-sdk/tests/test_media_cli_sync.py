"""Upload reading, the CLI's argument parsing, URL handling and the sync client's loop."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from plaza_client import AsyncClient, Client
from plaza_client._media import read_upload, sniff_image_type
from plaza_client.cli import DEFAULT_URL, _parser, main

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def test_sniff_image_types() -> None:
    assert sniff_image_type(PNG) == "image/png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image_type(b"GIF89a...") == "image/gif"
    assert sniff_image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"hello") is None


def test_read_upload_from_bytes_path_and_file(tmp_path: Path) -> None:
    assert read_upload(PNG) == ("upload", PNG, "image/png")
    path = tmp_path / "cat.jpg"
    path.write_bytes(b"not really a jpeg")
    assert read_upload(path) == ("cat.jpg", b"not really a jpeg", "image/jpeg")
    assert read_upload(str(path), content_type="image/png")[2] == "image/png"
    name, data, ctype = read_upload(io.BytesIO(PNG), filename="x.png")
    assert (name, data, ctype) == ("x.png", PNG, "image/png")


def test_cli_parses_tail_and_post() -> None:
    args = _parser().parse_args(
        ["tail", "--feed", "--notifications", "--server", "http://h:1", "--user", "a"]
    )
    assert (args.command, args.feed, args.notifications, args.server) == (
        "tail",
        True,
        True,
        "http://h:1",
    )
    args = _parser().parse_args(["post", "hello world", "--media", "a.png"])
    assert (args.command, args.content, args.media) == ("post", "hello world", ["a.png"])


def test_cli_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAZA_URL", "https://plaza.example")
    monkeypatch.setenv("PLAZA_USER", "bob")
    args = _parser().parse_args(["tail"])
    assert (args.server, args.user) == ("https://plaza.example", "bob")


@pytest.mark.parametrize("argv", [["--help"], ["tail", "--help"], ["post", "--help"]])
def test_cli_help_names_its_environment_and_default_server(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLAZA_PASSWORD", "hunter2-secret")
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in ("PLAZA_URL", "PLAZA_USER", "PLAZA_PASSWORD", DEFAULT_URL):
        assert name in text, (argv, name)
    assert DEFAULT_URL == "http://127.0.0.1:8000"
    assert "hunter2-secret" not in text  # the help names variables, never shows values


async def test_ws_url_follows_the_base_url() -> None:
    async with AsyncClient("https://plaza.example/") as c:
        assert c.base_url == "https://plaza.example"
        assert c.ws_url == "wss://plaza.example/api/v1/ws"
    async with AsyncClient("http://127.0.0.1:8000") as c:
        assert c.ws_url == "ws://127.0.0.1:8000/api/v1/ws"
    with pytest.raises(ValueError, match="base_url"):
        AsyncClient("127.0.0.1:8000")


async def test_sync_client_works_while_a_loop_runs_in_this_thread() -> None:
    # As in Jupyter: a loop is running here, yet the blocking client can be built,
    # used (no network needed for this property) and closed.
    before = threading.active_count()
    c = Client("http://127.0.0.1:9")
    assert c.tokens is None and c.base_url == "http://127.0.0.1:9"
    c.close()
    c.close()  # idempotent
    assert threading.active_count() == before
