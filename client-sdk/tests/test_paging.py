from __future__ import annotations

from dataclasses import dataclass

from plaza_client.paging import cursor_of, page_of, parse_link_header


@dataclass
class Item:
    id: str


MASTODON = (
    '<https://p.example/api/v1/feed?limit=20&max_id=103>; rel="next", '
    '<https://p.example/api/v1/feed?limit=20&min_id=110>; rel="prev"'
)


def test_parse_link_header_mastodon_style() -> None:
    links = parse_link_header(MASTODON)
    assert links == {
        "next": "https://p.example/api/v1/feed?limit=20&max_id=103",
        "prev": "https://p.example/api/v1/feed?limit=20&min_id=110",
    }


def test_parse_link_header_variants() -> None:
    assert parse_link_header(None) == {}
    assert parse_link_header("") == {}
    # Unquoted rel, extra params, rel lists, commas inside the URI.
    value = '</a?x=1,2&max_id=5>; title="a, b"; rel=next, </b>; rel="prev first"'
    links = parse_link_header(value)
    assert links["next"] == "/a?x=1,2&max_id=5"
    assert links["prev"] == "/b" and links["first"] == "/b"


def test_cursor_of() -> None:
    assert cursor_of("/feed?max_id=9&limit=3", "max_id") == "9"
    assert cursor_of("/feed?since_id=4", "min_id", "since_id") == "4"
    assert cursor_of("/feed", "max_id") is None


def test_page_cursor_from_link_header() -> None:
    page = page_of([Item("110"), Item("104")], MASTODON)
    # The Link header wins over the last id (a cursor need not be an item id).
    assert page.next == "103" and page.prev == "110"


def test_page_without_link_uses_last_id() -> None:
    assert page_of([Item("9"), Item("7")], None).next == "7"
    assert page_of([], None).next is None


def test_link_without_next_means_the_end() -> None:
    page = page_of([Item("3")], '</api/v1/feed?min_id=3>; rel="prev"')
    assert page.next is None and page.prev == "3"
