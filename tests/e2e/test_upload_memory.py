"""Memory under a burst of big uploads, on a real `plaza serve`: six 40-megapixel JPEGs at
once stay within the decode budget and the process gives the memory back afterwards."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from server.images import DECODE_BUDGET_BYTES, MAX_STORED_PIXELS
from tests.e2e.conftest import TEST_ENV
from tests.support.clients import make_user
from tests.support.live_server import LiveServer, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MIB = 1024 * 1024
UPLOADS = 6


def rss_mib(live: LiveServer) -> float:
    assert live.proc is not None
    for line in Path(f"/proc/{live.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def big_jpeg() -> bytes:
    """8000x5000 (40 Mpx, the default pixel limit), smooth enough to stay under 10 MiB."""
    ramp = Image.linear_gradient("L").resize((8000, 5000))
    image = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), ramp))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("plaza-uploads"), TEST_ENV) as live:
        yield live


async def test_a_burst_of_big_jpegs_stays_in_budget_and_memory_is_given_back(
    server: LiveServer,
) -> None:
    data = big_jpeg()
    async with httpx.AsyncClient(timeout=60) as http:
        me = await make_user(http, server.api)
        headers = {"Authorization": f"Bearer {me.token}"}
        files = {"file": ("big.jpg", data, "image/jpeg")}
        # Warm: the first upload loads Pillow's codecs and the database pages.
        assert (
            await http.post(f"{server.api}/media", headers=headers, files=files)
        ).status_code == 201
        before = rss_mib(server)
        peak = before

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_mib(server))
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        try:
            replies = await asyncio.gather(
                *(
                    http.post(f"{server.api}/media", headers=headers, files=files)
                    for _ in range(UPLOADS)
                )
            )
        finally:
            watcher.cancel()
        await asyncio.sleep(0.5)
        after = rss_mib(server)
    assert [r.status_code for r in replies] == [201] * UPLOADS
    stored = replies[0].json()
    assert stored["width"] * stored["height"] <= MAX_STORED_PIXELS
    # The budget, plus the request bodies (6 x ~1 MB) and the encoders' buffers.
    assert peak - before < DECODE_BUDGET_BYTES / MIB + 64, (before, peak, after)
    # Given back: within a few tens of MB of where it was before the burst.
    assert after - before < 48, (before, peak, after)
    print(f"upload burst: RSS {before:.0f} MiB before, {peak:.0f} peak, {after:.0f} after")
