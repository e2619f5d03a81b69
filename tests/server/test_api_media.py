"""POST /media (multipart images) and GET /media/{id} (bytes with caching headers)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from api_world import BOTH_BACKENDS, Api, assert_error, make_settings, running_api
from PIL import Image


def png(width: int = 32, height: int = 24, *, noise: bool = False) -> bytes:
    if noise:  # incompressible: the encoded file is about width * height * 3 bytes
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (200, 30, 90))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@BOTH_BACKENDS
async def test_upload_and_fetch_an_image(api: Api) -> None:
    alice = await api.user()
    r = await api.post("/media", alice, files={"file": ("pic.png", png(), "image/png")})
    assert r.status_code == 201, r.text
    media = r.json()
    assert (media["content_type"], media["width"], media["height"]) == ("image/png", 32, 24)
    assert media["url"] == f"/api/v1/media/{media['id']}"

    r = await api.get(f"/media/{media['id']}")  # public: <img> tags send no token
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    assert Image.open(io.BytesIO(r.content)).size == (32, 24)

    r = await api.get(f"/media/{media['id']}", headers={"If-None-Match": r.headers["etag"]})
    assert r.status_code == 304 and r.content == b""

    # The upload can be attached to a post and used as the avatar.
    post = await api.create_post(alice, "look", media_ids=[media["id"]])
    assert [m["id"] for m in post["media"]] == [media["id"]]
    r = await api.patch(f"/users/{alice.id}", alice, json={"avatar_media_id": media["id"]})
    assert r.json()["avatar_media_id"] == media["id"]


async def test_someone_elses_media_cannot_be_attached(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    media = (await api.post("/media", alice, files={"file": ("a.png", png(), "image/png")})).json()
    r = await api.post("/posts", bob, json={"content": "mine now", "media_ids": [media["id"]]})
    assert_error(r, 422, "invalid_media")


async def test_non_images_are_415(api: Api) -> None:
    alice = await api.user()
    r = await api.post("/media", alice, files={"file": ("notes.txt", b"just text", "text/plain")})
    assert_error(r, 415)
    # Lying about the type does not help: the bytes decide.
    r = await api.post("/media", alice, files={"file": ("x.png", b"<svg></svg>", "image/png")})
    assert_error(r, 415)


async def test_upload_input_errors(api: Api) -> None:
    alice = await api.user()
    assert_error(await api.post("/media", files={"file": ("a.png", png(), "image/png")}), 401)
    r = await api.post("/media", alice, files={"other": ("a.png", png(), "image/png")})
    assert_error(r, 422)
    r = await api.post("/media", alice, json={"file": "data"})
    assert r.status_code in (400, 415, 422)
    assert_error(r, r.status_code)
    assert_error(await api.get("/media/abc"), 422)
    assert_error(await api.get("/media/12345"), 404)


async def test_uploads_may_exceed_the_json_body_limit(api: Api) -> None:
    alice = await api.user()
    big = png(1024, 700, noise=True)
    assert len(big) > 2 * 1024 * 1024
    r = await api.post("/media", alice, files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 201, r.text
    # ... while a JSON body of that size is refused.
    r = await api.post("/posts", alice, content=b'{"content": "' + b"x" * len(big) + b'"}')
    assert_error(r, 413, "payload_too_large")


async def test_upload_limit(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", max_upload_bytes=64 * 1024
    )
    async with running_api(settings) as api:
        alice = await api.user()
        # Over the file limit but inside the multipart slack: the processor refuses it.
        r = await api.post(
            "/media", alice, files={"file": ("a.png", png(150, 150, noise=True), "image/png")}
        )
        assert_error(r, 413, "payload_too_large")
        # Over the request body limit: refused before it is read.
        r = await api.post(
            "/media", alice, files={"file": ("a.png", png(300, 300, noise=True), "image/png")}
        )
        assert_error(r, 413, "payload_too_large")


async def test_a_media_folder_that_cannot_be_written_is_507_and_not_ready(
    tmp_path: Path,
) -> None:
    """Uploads into storage that refuses writes (here its parent is a file, which holds
    even for root; a full disk fails the same way) are a 507 with the envelope, /ready
    names the media folder, the rest of the API works, and it all recovers when fixed."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("in the way")
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", media_dir=blocker / "media"
    )
    async with running_api(settings) as api:
        alice = await api.user()
        r = await api.post("/media", alice, files={"file": ("a.png", png(), "image/png")})
        assert_error(r, 507, "insufficient_storage")
        ready = await api.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "media": "unavailable"}
        r = await api.post("/posts", alice, json={"content": "text still works"})
        assert r.status_code == 201

        blocker.unlink()  # the operator frees the path
        r = await api.post("/media", alice, files={"file": ("a.png", png(), "image/png")})
        assert r.status_code == 201, r.text
        assert (await api.get("/ready")).status_code == 200
