"""GET / (the web app's page) and GET /app/{name} (its scripts, styles and icon).

The files are read once, at import, from the package (so an installed copy serves what it
shipped) and looked up by exact name: no path from a request ever reaches the file system.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

# Litestar adds `; charset=utf-8` to text types itself.
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}

# Asset names carry no version (no build step), so a browser keeps its copy but asks
# each time whether it changed: an upgrade is seen at the next load, and an unchanged
# file costs a 304.
REVALIDATE = "no-cache"

# Everything the page loads comes from this origin; no inline script or style, no
# plugins, no framing, and forms only post here. `connect-src 'self'` covers the same
# host's ws: and wss: in CSP Level 3 browsers; the socket's exact origin is named too for
# the older ones that did not, instead of any ws: host.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'{sockets}; manifest-src 'self'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
# A Host header as browsers send it: a name or an IPv4 address, and a port. Anything else
# names no socket origin: it could carry `;` and smuggle a directive, and CSP has no
# syntax for IPv6 literals (those pages rely on 'self').
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def content_security_policy(host: str | None) -> str:
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return _CSP.format(sockets=sockets)


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _load() -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for entry in files("server.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            assets[entry.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return assets


ASSETS = _load()


class WebAppController(Controller):
    path = "/"
    include_in_schema = False

    @get("/", cache=False)
    async def index(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return _serve(request, "index.html")

    @get("/app/{name:str}", cache=False)
    async def asset(self, request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        if name == "index.html":
            raise NotFoundException()
        return _serve(request, name)


def _serve(request: Request[Any, Any, Any], name: str) -> Response[bytes]:
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFoundException()
    headers = {
        "Cache-Control": REVALIDATE,
        "ETag": asset.etag,
        "Content-Security-Policy": content_security_policy(request.headers.get("host")),
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)
