"""List paging over REST: query parameters in, `Link` header out (Mastodon's scheme).

Parameters are taken as strings and parsed here so that `limit=abc` or `max_id=-1` is a
422 with our error shape instead of a framework error.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import URL
from litestar.params import QueryParameter

from domain.errors import ValidationFailed
from domain.ids import ID_PATTERN, parse_id
from domain.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest

T = TypeVar("T")

_CURSORS = ("max_id", "since_id", "min_id")


def _limit(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationFailed("limit must be a positive integer", details={"field": "limit"})
    # Any number of digits is a number: above the cap is clamped (as documented), and a
    # long digit string is never converted (int() of a huge string costs CPU).
    return MAX_LIMIT if len(raw.lstrip("0")) > 6 else int(raw)


def _cursor(raw: str | None, field: str) -> int | None:
    if raw is None or raw == "":
        return None
    return parse_id(raw, field)


def cursor(name: str, description: str) -> Any:
    """A paging cursor: an id, documented with the pattern `parse_id` accepts."""
    return QueryParameter(
        name=name,
        description=description,
        # Empty is the same as absent.
        schema_extra={
            "one_of": None,
            "type": "string",
            "pattern": ID_PATTERN.replace("(?:", "(?:|", 1),
        },
    )


def provide_page(
    limit: Annotated[
        str | None,
        QueryParameter(
            name="limit",
            description=f"default {DEFAULT_LIMIT}; larger values are clamped to {MAX_LIMIT}",
            # Documented as the integer it is; parsed here (see the module docstring).
            schema_extra={"one_of": None, "type": "integer", "minimum": 1},
        ),
    ] = None,
    max_id: Annotated[str | None, cursor("max_id", "older than")] = None,
    since_id: Annotated[str | None, cursor("since_id", "the newest items newer than it")] = None,
    min_id: Annotated[str | None, cursor("min_id", "the items right after it")] = None,
) -> PageRequest:
    """Litestar dependency `page`: the documented query parameters of every list."""
    return PageRequest.of(
        limit=_limit(limit),
        max_id=_cursor(max_id, "max_id"),
        since_id=_cursor(since_id, "since_id"),
        min_id=_cursor(min_id, "min_id"),
    )


def link_header(request: Request[Any, Any, Any], page: Page[Any]) -> str | None:
    """`<...max_id=oldest>; rel="next", <...min_id=newest>; rel="prev"`, keeping the other
    query parameters (q, type, limit). None for an empty page: there is nothing to page
    from (a client at the end stops; one at the top polls with its own min_id)."""
    if page.newest_cursor is None or page.oldest_cursor is None:
        return None
    url = URL(str(request.url))
    base = [(k, v) for k, v in url.query_params.multi_items() if k not in _CURSORS]
    next_url = url.with_replacements(query=urlencode([*base, ("max_id", str(page.oldest_cursor))]))
    prev_url = url.with_replacements(query=urlencode([*base, ("min_id", str(page.newest_cursor))]))
    return f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'


def rest_page(request: Request[Any, Any, Any], page: Page[T]) -> Response[list[T]]:
    """A list response: the JSON array and its Link header."""
    link = link_header(request, page)
    return Response(page.items, headers={"Link": link} if link else None)
