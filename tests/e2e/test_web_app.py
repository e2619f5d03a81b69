"""The web app at `/` in a real headless Chromium (Debian's, driven by Playwright).

Each test opens the page of a real `plaza serve`, records every console error, page error
and request of the page, and checks at the end that there were no errors and that nothing
was fetched from another origin.
"""

from __future__ import annotations

import io
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import services_required
from tests.e2e.conftest import TEST_ENV
from tests.support.clients import PASSWORD, User, make_user
from tests.support.live_server import LiveServer, running_server

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Request, WebSocket

pytestmark = pytest.mark.e2e

# Generous for a loaded 2-core machine; a passing run waits far less.
WAIT_MS = 10_000


def chromium_path() -> str:
    path = shutil.which("chromium")
    try:
        import playwright  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        message = "Chromium (Debian's `chromium`) or the playwright package is missing"
        if services_required():
            pytest.fail(f"{message} and PLAZA_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # --no-sandbox: tests run as root, where Chromium's sandbox refuses to start.
        launched = await pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    """A page of the app with everything it logged and fetched."""

    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("request", self._request)
        self.page.on("websocket", self._websocket)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)

    def _websocket(self, socket: WebSocket) -> None:
        self.urls.append(socket.url)

    def assert_clean(self, *, network_loss: bool = False) -> None:
        """No errors (when the server was away on purpose, only the browser's own reports
        of refused connections) and not one request to another origin."""
        errors = self.errors
        if network_loss:
            errors = [e for e in errors if not re.search(r"net::ERR_|WebSocket connection", e)]
        assert errors == []
        ws_origin = self.origin.replace("http://", "ws://", 1)
        foreign = [
            u
            for u in self.urls
            if not (u.startswith(self.origin + "/") or u.startswith(ws_origin + "/"))
        ]
        assert foreign == []
        # The socket authenticates with a frame: no token (nor anything else) in its URL.
        assert {u for u in self.urls if u.startswith("ws")} <= {f"{ws_origin}/api/v1/ws"}


async def open_app(browser: Browser, server: LiveServer) -> Tab:
    page = await browser.new_page()
    tab = Tab(page, server.base_url)
    tab.watch()
    await page.goto(server.base_url + "/")
    return tab


async def log_in(tab: Tab, user: User) -> None:
    page = tab.page
    await page.get_by_label("Email or username").fill(user.username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_role("textbox", name="New post").wait_for(timeout=WAIT_MS)
    await live(tab)


async def live(tab: Tab) -> None:
    await tab.page.get_by_role("status").filter(has_text="Live").wait_for(timeout=WAIT_MS)


async def post(http: httpx.AsyncClient, server: LiveServer, author: User, text: str) -> str:
    r = await http.post(f"{server.api}/posts", json={"content": text}, headers=author.auth)
    assert r.status_code == 201, r.text
    post_id: str = r.json()["id"]
    return post_id


async def follow(http: httpx.AsyncClient, server: LiveServer, fan: User, author: User) -> None:
    r = await http.post(f"{server.api}/users/{author.id}/follow", headers=fan.auth)
    assert r.status_code == 200, r.text


async def count(tab: Tab, text: str) -> int:
    n: int = await tab.page.get_by_role("feed").get_by_role("article").filter(has_text=text).count()
    return n


async def appears(tab: Tab, text: str) -> None:
    feed = tab.page.get_by_role("feed")
    await feed.get_by_role("article").filter(has_text=text).first.wait_for(timeout=WAIT_MS)


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (59, 91, 219)).save(out, "PNG")
    return out.getvalue()


async def test_the_page_and_its_files(server: LiveServer, http: httpx.AsyncClient) -> None:
    r = await http.get(server.base_url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    # No inline script: every script is a module file of this origin.
    assert re.findall(r"<script[^>]*>", r.text) == ['<script type="module" src="/app/app.js">']

    js = await http.get(server.base_url + "/app/app.js")
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert js.headers["content-security-policy"] == csp
    again = await http.get(
        server.base_url + "/app/app.js", headers={"If-None-Match": js.headers["etag"]}
    )
    assert again.status_code == 304
    css = await http.get(server.base_url + "/app/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    for missing in ("/app/nope.js", "/app/index.html", "/app/..%2fstatic_files.py"):
        assert (await http.get(server.base_url + missing)).status_code == 404
    # A Host header cannot smuggle a directive into the policy.
    evil = await http.get(server.base_url + "/", headers={"Host": "x; script-src *"})
    assert "script-src *" not in evil.headers["content-security-policy"]


async def test_log_in_see_a_followee_post_live_and_post(
    browser: Browser, server: LiveServer, http: httpx.AsyncClient
) -> None:
    reader = await make_user(http, server.api, "reader")
    author = await make_user(http, server.api, "author")
    await follow(http, server, reader, author)
    tab = await open_app(browser, server)
    await log_in(tab, reader)

    await post(http, server, author, "fresh off the press")
    await appears(tab, "fresh off the press")

    page = tab.page
    await page.get_by_role("textbox", name="New post").fill("typed in the browser")
    await page.get_by_role("button", name="Post", exact=True).click()
    await appears(tab, "typed in the browser")
    r = await http.get(f"{server.api}/users/{reader.id}/posts")
    assert [p["content"] for p in r.json()] == ["typed in the browser"]
    # The own post comes back on the feed channel too: still one article each.
    await page.wait_for_timeout(300)
    assert await count(tab, "typed in the browser") == 1
    assert await count(tab, "fresh off the press") == 1

    # A reload keeps the tab logged in (the refresh token is in sessionStorage).
    await page.reload()
    await page.get_by_role("textbox", name="New post").wait_for(timeout=WAIT_MS)
    await live(tab)
    await appears(tab, "typed in the browser")
    assert await count(tab, "fresh off the press") == 1

    await page.get_by_role("button", name="Log out").click()
    await page.get_by_role("button", name="Log in").wait_for(timeout=WAIT_MS)
    assert await page.evaluate("sessionStorage.length") == 0
    tab.assert_clean()


async def register_in_browser(tab: Tab, server: LiveServer, http: httpx.AsyncClient) -> User:
    """An account made through the page's form; the User holds a login of its own."""
    name = f"me_{uuid.uuid4().hex[:10]}"
    page = tab.page
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_label("Username").fill(name)
    await page.get_by_label("Email").fill(f"{name}@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.get_by_role("textbox", name="New post").wait_for(timeout=WAIT_MS)
    await live(tab)
    r = await http.post(f"{server.api}/auth/login", json={"login": name, "password": PASSWORD})
    body = r.json()
    return User(body["user"]["id"], name, body["access_token"], body["refresh_token"])


async def test_scroll_like_comment_follow_notify_search_and_upload(
    browser: Browser, server: LiveServer, http: httpx.AsyncClient
) -> None:
    other = await make_user(http, server.api, "other")
    for i in range(25):
        await post(http, server, other, f"numbered post {i:02d}")
    tab = await open_app(browser, server)
    page = tab.page
    me = await register_in_browser(tab, server, http)

    # search users → profile → follow: their posts fill the home feed
    await page.get_by_role("link", name="Search").click()
    await page.get_by_role("searchbox", name="Search").fill(other.username)
    await page.get_by_role("combobox", name="Search in").select_option("users")
    await page.get_by_role("button", name="Search", exact=True).click()
    await page.get_by_role("list", name="Users found").get_by_role("link").first.click()
    await page.get_by_role("button", name=f"Follow {other.username}").click()
    await page.get_by_role("button", name=f"Unfollow {other.username}").wait_for(timeout=WAIT_MS)
    rel = await http.get(f"{server.api}/users/{other.id}/relationship", headers=me.auth)
    assert rel.json()["following"] is True

    # infinite scroll: 20 first, the rest once the end of the feed is in view
    await page.get_by_role("link", name="Home").click()
    await appears(tab, "numbered post 24")
    feed = page.get_by_role("feed", name="Home feed")
    assert await feed.get_by_role("article").count() == 20
    await page.mouse.wheel(0, 100_000)
    await appears(tab, "numbered post 00")
    assert await feed.get_by_role("article").count() == 25

    # like and comment
    top = feed.get_by_role("article").filter(has_text="numbered post 24")
    await top.get_by_role("button", name="Like").click()
    await top.get_by_text("1 like").wait_for(timeout=WAIT_MS)
    assert await top.get_by_role("button", name="Like").get_attribute("aria-pressed") == "true"
    await top.get_by_role("button", name="Comments").click()
    await top.get_by_role("textbox", name="Comment").fill("nice one")
    await top.get_by_role("button", name="Reply").click()
    await top.get_by_text("1 comment", exact=True).wait_for(timeout=WAIT_MS)
    post_id = await top.get_attribute("data-id")
    comments = (await http.get(f"{server.api}/posts/{post_id}/comments")).json()
    assert [c["content"] for c in comments] == ["nice one"]
    # someone else's comment arrives live in the open thread
    r = await http.post(
        f"{server.api}/posts/{post_id}/comments", json={"content": "thanks!"}, headers=other.auth
    )
    assert r.status_code == 201
    await top.get_by_text("thanks!").wait_for(timeout=WAIT_MS)

    # a post with an image
    await page.get_by_role("textbox", name="New post").fill("with a picture")
    await page.get_by_label("Add image").set_input_files(
        {"name": "blue.png", "mimeType": "image/png", "buffer": png()}
    )
    await page.get_by_role("button", name="Post", exact=True).click()
    mine = feed.get_by_role("article").filter(has_text="with a picture")
    image = mine.get_by_role("img")
    await image.wait_for(timeout=WAIT_MS)
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth === 64", arg=await image.element_handle()
    )

    # the unread badge follows notifications live, and reading them clears it
    my_post = await mine.get_attribute("data-id")
    assert (await http.post(f"{server.api}/posts/{my_post}/likes", headers=other.auth)).is_success
    await mine.get_by_text("1 like", exact=True).wait_for(timeout=WAIT_MS)  # counts are live
    await follow(http, server, other, me)
    badge = page.get_by_role("link", name=re.compile("Notifications"))
    await badge.get_by_text("2", exact=True).wait_for(timeout=WAIT_MS)
    await badge.click()
    notes = page.get_by_role("list", name="Notifications").get_by_role("listitem")
    await notes.filter(has_text="followed you").wait_for(timeout=WAIT_MS)
    await notes.filter(has_text="liked your post").wait_for(timeout=WAIT_MS)
    await page.locator("#unread").wait_for(state="hidden", timeout=WAIT_MS)
    unread = await http.get(f"{server.api}/notifications/unread_count", headers=me.auth)
    assert unread.json() == {"count": 0}

    # search posts
    await page.get_by_role("link", name="Search").click()
    await page.get_by_role("searchbox", name="Search").fill("picture")
    await page.get_by_role("button", name="Search", exact=True).click()
    found = page.get_by_role("feed", name="Posts found").get_by_role("article")
    await found.filter(has_text="with a picture").wait_for(timeout=WAIT_MS)
    tab.assert_clean()


@pytest.mark.slow
async def test_reconnects_after_a_restart_and_shows_what_was_missed_once(
    browser: Browser, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    with running_server(tmp_path, TEST_ENV) as server:
        reader = await make_user(http, server.api, "reader")
        author = await make_user(http, server.api, "author")
        await follow(http, server, reader, author)
        tab = await open_app(browser, server)
        await log_in(tab, reader)
        await post(http, server, author, "before the restart")
        await appears(tab, "before the restart")

        # The server restarts on the same port and database, and the page loses its
        # network meanwhile (so that it cannot be back before the next post): what is
        # posted while it is away must show up, once, when it comes back.
        server.stop()
        await (
            tab.page.get_by_role("status").filter(has_text="Reconnecting").wait_for(timeout=WAIT_MS)
        )
        await tab.page.context.set_offline(True)
        server.start()
        await post(http, server, author, "while you were away")
        await tab.page.context.set_offline(False)
        await appears(tab, "while you were away")
        await live(tab)

        # And live pushes flow on the new socket.
        await post(http, server, author, "after the restart")
        await appears(tab, "after the restart")
        await tab.page.wait_for_timeout(300)
        for text in ("before the restart", "while you were away", "after the restart"):
            assert await count(tab, text) == 1, text
        tab.assert_clean(network_loss=True)
