"""Mastodon's cursor semantics: max_id (older than), since_id (newest newer than),
min_id (the items right after, paging forward). Always newest first."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.errors import ValidationFailed
from domain.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest, apply_page, fill_page

IDS = list(range(100, 0, -1))  # 100..1, newest first


def test_defaults() -> None:
    page = PageRequest.of()
    assert page == PageRequest(limit=DEFAULT_LIMIT)
    assert DEFAULT_LIMIT == 20


@pytest.mark.parametrize(("asked", "got"), [(1, 1), (40, 40), (41, 40), (100, 40), (10**9, 40)])
def test_limit_is_clamped_not_refused(asked: int, got: int) -> None:
    assert PageRequest.of(limit=asked).limit == got == min(asked, MAX_LIMIT)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValidationFailed) as info:
        PageRequest.of(limit=limit)
    assert info.value.details == {"field": "limit"}


@pytest.mark.parametrize("field", ["max_id", "since_id", "min_id"])
def test_negative_cursor_is_refused(field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        PageRequest.of(**{field: -5})
    assert info.value.details == {"field": field}


def test_first_page_is_the_newest() -> None:
    assert apply_page(IDS, PageRequest(limit=3)) == [100, 99, 98]


def test_max_id_is_exclusive_and_pages_back() -> None:
    first = apply_page(IDS, PageRequest(limit=3))
    second = apply_page(IDS, PageRequest(limit=3, max_id=first[-1]))
    assert second == [97, 96, 95]


def test_paging_back_visits_every_item_once() -> None:
    seen: list[int] = []
    page = PageRequest(limit=7)
    while items := apply_page(IDS, page):
        seen.extend(items)
        page = PageRequest(limit=7, max_id=items[-1])
    assert seen == IDS


def test_since_id_gives_the_newest_items_above_it() -> None:
    # With a gap larger than the limit, since_id returns the NEWEST ones (a gap remains).
    assert apply_page(IDS, PageRequest(limit=3, since_id=10)) == [100, 99, 98]
    assert apply_page(IDS, PageRequest(limit=3, since_id=98)) == [100, 99]


def test_min_id_gives_the_items_right_after_it() -> None:
    # Paging forward: the oldest `limit` items newer than min_id, still newest first.
    assert apply_page(IDS, PageRequest(limit=3, min_id=10)) == [13, 12, 11]


def test_paging_forward_with_min_id_visits_every_item_once() -> None:
    seen: list[int] = []
    page = PageRequest(limit=6, min_id=0)
    while items := apply_page(IDS, page):
        seen.extend(reversed(items))
        page = PageRequest(limit=6, min_id=items[0])
    assert seen == sorted(IDS)


def test_max_and_since_together_bound_a_window() -> None:
    assert apply_page(IDS, PageRequest(limit=40, max_id=15, since_id=11)) == [14, 13, 12]


def test_empty_and_past_the_end() -> None:
    assert apply_page([], PageRequest()) == []
    assert apply_page(IDS, PageRequest(max_id=1)) == []
    assert apply_page(IDS, PageRequest(min_id=100)) == []


# --- fill_page: lists that hide rows still answer full pages ---------------------------------


class Source:
    """A newest-first list of ids with `apply_page` semantics that counts its reads."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.reads = 0

    async def fetch(self, page: PageRequest) -> list[int]:
        self.reads += 1
        return apply_page(self.ids, page)


def keeping(hidden: set[int]):  # type: ignore[no-untyped-def]
    async def keep(rows: Sequence[int]) -> list[tuple[int, str]]:
        return [(i, f"item{i}") for i in rows if i not in hidden]

    return keep


async def fill(source: Source, page: PageRequest, hidden: set[int]) -> Page[str]:
    return await fill_page(page, source.fetch, lambda i: i, keeping(hidden))


async def test_a_page_of_hidden_rows_reads_on_instead_of_ending_the_list() -> None:
    source = Source(IDS)
    hidden = set(range(100, 60, -1))  # the 40 newest are all hidden
    page = await fill(source, PageRequest(limit=5), hidden)
    assert [int(i.removeprefix("item")) for i in page.items] == [60, 59, 58, 57, 56]
    assert page.full and page.next_max_id == "56" and page.newest_cursor == 60
    assert source.reads > 1


async def test_walking_a_filtered_list_visits_every_visible_item_once() -> None:
    hidden = {i for i in IDS if i % 3 == 0}
    source = Source(IDS)
    seen: list[int] = []
    request = PageRequest(limit=7)
    while True:
        page = await fill(source, request, hidden)
        seen.extend(int(i.removeprefix("item")) for i in page.items)
        if page.next_max_id is None:
            break
        request = PageRequest(limit=7, max_id=int(page.next_max_id))
    assert seen == [i for i in IDS if i not in hidden]


async def test_a_short_last_page_says_so() -> None:
    page = await fill(Source(IDS), PageRequest(limit=5, max_id=4), {2})
    assert page.items == ["item3", "item1"]
    assert not page.full and page.next_max_id is None
    empty = await fill(Source(IDS), PageRequest(limit=5, max_id=3), {1, 2})
    assert empty == Page([], None, None, False)


async def test_min_id_pages_forward_past_hidden_rows() -> None:
    hidden = set(range(11, 60))
    page = await fill(Source(IDS), PageRequest(limit=3, min_id=10), hidden)
    # The three visible items right after 10, newest first.
    assert page.items == ["item62", "item61", "item60"]


async def test_since_id_bounds_the_walk() -> None:
    page = await fill(Source(IDS), PageRequest(limit=5, since_id=90), set(range(95, 101)))
    assert page.items == ["item94", "item93", "item92", "item91"]
    assert not page.full
