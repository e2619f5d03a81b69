"""A full disk under SQLite and the media folder: a real 4 MiB tmpfs, filled up. Writes are
a 507 with the envelope (never a 500, never half-stored), reads keep working, /ready says
what cannot store, the outage is logged once, and it all recovers when room is made."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from api_world import PASSWORD, assert_error, make_settings, running_api
from test_api_media import png

pytestmark = pytest.mark.slow


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the file to delete to make room again."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue  # full at this size: top up with smaller writes
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_answers_507_and_recovers(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        small_disk,
        f"sqlite:///{small_disk / 'plaza.sqlite'}",
        media_dir=small_disk / "media",
    )
    async with running_api(settings) as api:
        alice = await api.user()
        first = await api.create_post(alice, "before the disk filled")
        filler = fill(small_disk)
        assert os.statvfs(small_disk).f_bavail == 0

        caplog.set_level(logging.WARNING, logger="storage.db")
        # Posts until one needs a new page: the database file must grow to store it.
        stored = 0
        for _ in range(50):
            r = await api.post("/posts", alice, json={"content": "x" * 500})
            if r.status_code != 201:
                break
            stored += 1
        assert_error(r, 507, "insufficient_storage")
        body = {"username": "late", "email": "late@example.com", "password": PASSWORD}
        for _ in range(20):  # sign-ups until one needs a new page
            r = await api.post("/auth/register", json=body)
            if r.status_code != 201:
                break
            body = {**body, "username": body["username"] + "x", "email": "x" + body["email"]}
        assert_error(r, 507, "insufficient_storage")
        r = await api.post("/media", alice, files={"file": ("a.png", png(), "image/png")})
        assert_error(r, 507, "insufficient_storage")

        # Reads still work; readiness says what cannot store.
        assert (await api.get(f"/posts/{first['id']}", alice)).status_code == 200
        assert (await api.get("/feed", alice)).status_code == 200
        ready = await api.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "insufficient_storage"
        assert ready.json()["checks"]["media"] == "unavailable"
        full_lines = [r for r in caplog.records if "cannot store anything" in r.getMessage()]
        assert len(full_lines) == 1  # once, not once per request

        filler.unlink()  # the operator makes room
        r = await api.post("/posts", alice, json={"content": "after"})
        assert r.status_code == 201, r.text
        r = await api.post("/media", alice, files={"file": ("a.png", png(), "image/png")})
        assert r.status_code == 201, r.text
        assert (await api.get("/ready")).status_code == 200
        assert any("stores again" in r.getMessage() for r in caplog.records)
        # Nothing refused was stored: every post answered 201 is there, and no other.
        posts = (await api.get(f"/users/{alice.id}/posts?limit=100", alice)).json()
        assert posts[0]["content"] == "after" and posts[-1]["content"] == "before the disk filled"
        assert all(p["content"] == "x" * 500 for p in posts[1:-1])
        assert len(posts) == stored + 2
