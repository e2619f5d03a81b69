"""Input rules shared by REST and WebSocket actions."""

from __future__ import annotations

import pytest

from domain import validation
from domain.errors import ValidationFailed
from domain.services.search import search_type


def _field_of(info: pytest.ExceptionInfo[ValidationFailed]) -> object:
    return info.value.details["field"]


# --- usernames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("ALICE_99", "alice_99"),
        ("  bob  ", "bob"),
        ("abc", "abc"),
        ("a" * 30, "a" * 30),
        ("\u212aate", "kate"),  # KELVIN SIGN lower-cases to ASCII k: same name as 'kate'
    ],
)
def test_username_is_case_folded(raw: str, clean: str) -> None:
    assert validation.username(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ab",
        "a" * 31,
        "al ice",
        "al-ice",
        "al.ice",
        "alice!",
        "al@ice",
        "ålice",
        "алиса",  # Cyrillic look-alikes
        "ali\u0307ce",  # combining dot
        "ali\x00ce",
        "ali\nce",
        "İstanbul",  # lower() grows a combining dot
    ],
)
def test_username_rejects(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validation.username(raw)
    assert _field_of(info) == "username"
    assert info.value.status == 422


# --- email ----------------------------------------------------------------------------------


def test_email_keeps_local_part_and_lowers_domain() -> None:
    assert validation.email("  Alice.Smith@Example.COM ") == "Alice.Smith@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@example.c",
        "al ice@example.com",
        "alice@@example.com",
        "a@b@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",  # over 254 in total
        "a\x00b@example.com",  # NUL: PostgreSQL text cannot hold it (a 500, not a 422)
        "a\x07b@example.com",
        "alice@exa\x00mple.com",
    ],
)
def test_email_rejects(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validation.email(raw)
    assert _field_of(info) == "email"


# --- passwords are measured in bytes ---------------------------------------------------------


def test_password_bounds_in_bytes() -> None:
    assert validation.password("x" * 8) == "x" * 8
    assert validation.password("x" * 1024) == "x" * 1024
    for bad in ("x" * 7, "x" * 1025, ""):
        with pytest.raises(ValidationFailed):
            validation.password(bad)


def test_password_multibyte_counts_bytes_not_characters() -> None:
    # 'é' is 2 bytes, '🔑' 4: four characters can already be 8 bytes.
    assert validation.password("éééé") == "éééé"
    with pytest.raises(ValidationFailed):
        validation.password("ééé")  # 3 characters, 6 bytes
    assert validation.password("🔑" * 256) == "🔑" * 256  # 1024 bytes
    with pytest.raises(ValidationFailed) as info:
        validation.password("🔑" * 257)  # 257 characters but 1028 bytes
    assert _field_of(info) == "password"


def test_password_is_not_trimmed() -> None:
    assert validation.password("  spaced  ") == "  spaced  "


# --- post and comment text ---------------------------------------------------------------------


def test_text_accepts_up_to_the_limit_in_characters() -> None:
    emoji = "🙂" * 500
    assert validation.text(emoji, field="content", max_chars=500) == emoji


@pytest.mark.parametrize("raw", ["", " ", "\n\t  ", "a" * 501, "hello\x00world"])
def test_text_rejects(raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validation.text(raw, field="content", max_chars=validation.POST_MAX_CHARS)
    assert _field_of(info) == "content"


def test_text_keeps_leading_whitespace_of_real_content() -> None:
    assert validation.text("  indented", field="content", max_chars=500) == "  indented"


# --- profile fields and idempotency keys -----------------------------------------------------


def test_display_name_and_bio() -> None:
    assert validation.display_name("  Alice  ") == "Alice"
    assert validation.bio("") == ""
    for bad_name in ("x" * 51, "a\x00b"):
        with pytest.raises(ValidationFailed):
            validation.display_name(bad_name)
    for bad_bio in ("x" * 501, "a\x00b"):
        with pytest.raises(ValidationFailed):
            validation.bio(bad_bio)


def test_idempotency_key() -> None:
    assert validation.idempotency_key(None) is None
    assert validation.idempotency_key("k-1") == "k-1"
    for bad in ("", "x" * 256, "a\nb", "a\x00b"):
        with pytest.raises(ValidationFailed) as info:
            validation.idempotency_key(bad)
        assert _field_of(info) == "idempotency_key"


# --- search ----------------------------------------------------------------------------------


def test_search_query_trims_and_collapses_whitespace() -> None:
    assert validation.search_query("  hello \t\n world  ") == "hello world"


def test_search_query_limit_applies_after_trimming() -> None:
    assert validation.search_query("  " + "q" * 100 + "  ") == "q" * 100
    with pytest.raises(ValidationFailed) as info:
        validation.search_query("q" * 101)
    assert _field_of(info) == "q"


def test_search_query_refuses_nul() -> None:
    with pytest.raises(ValidationFailed) as info:
        validation.search_query("hello\x00world")
    assert _field_of(info) == "q"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t"])
def test_search_query_blank(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        validation.search_query(raw)


def test_search_type() -> None:
    assert search_type("users") == "users"
    assert search_type("posts") == "posts"
    assert search_type(None) == "posts"
    for bad in ("", "Users", "hashtags"):
        with pytest.raises(ValidationFailed) as info:
            search_type(bad)
        assert _field_of(info) == "type"
