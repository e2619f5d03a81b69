"""Cursor paging: Link header parsing (RFC 8288) and building Pages from REST replies.

Lists use Mastodon's semantics: `max_id` pages to older items, `min_id` to newer ones.
The Link header is the authority on cursors, because a cursor is not always an item id
(a followers list pages by the id of the follow, not of the user); the last item's id is
only a fallback for servers that send no Link header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from plaza_client.models import Page

__all__ = ["cursor_of", "page_of", "parse_link_header"]

T = TypeVar("T", bound="_HasId")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


# One link-value: <uri> followed by ;-separated params. URIs may contain commas, so the
# header is scanned link by link rather than split on ",".
_LINK = re.compile(
    r'<(?P<uri>[^>]*)>(?P<params>(?:\s*;\s*[^=;,\s]+\s*(?:=\s*(?:"[^"]*"|[^;,]*))?)*)'
)
_PARAM = re.compile(r";\s*(?P<key>[^=;,\s]+)\s*(?:=\s*(?:\"(?P<q>[^\"]*)\"|(?P<t>[^;,]*)))?")


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each rel ("next", "prev", ...) to its URI; rel lists ("next last") fan out."""
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK.finditer(value):
        uri = match.group("uri").strip()
        for param in _PARAM.finditer(match.group("params")):
            if param.group("key").lower() != "rel":
                continue
            rels = param.group("q") if param.group("q") is not None else param.group("t") or ""
            for rel in rels.split():
                links.setdefault(rel.lower(), uri)
    return links


def cursor_of(uri: str, *names: str) -> str | None:
    """The first of the query parameters `names` present in `uri`."""
    query = parse_qs(urlsplit(uri).query)
    for name in names:
        values = query.get(name)
        if values:
            return values[0]
    return None


def page_of(items: Sequence[T], link_header: str | None) -> Page[T]:
    """A Page of REST items with next/prev cursors from the Link header."""
    links = parse_link_header(link_header)
    prev_uri = links.get("prev") or links.get("previous")
    prev = cursor_of(prev_uri, "min_id", "since_id") if prev_uri else None
    if link_header:
        # The server spoke: no rel="next" means this is the oldest page.
        next_uri = links.get("next")
        next_ = cursor_of(next_uri, "max_id") if next_uri else None
    else:
        next_ = items[-1].id if items else None
    return Page(list(items), next=next_, prev=prev)
