"""Snowflake ids: time-ordered, monotonic, unique; parse_id never lets junk through."""

from __future__ import annotations

import itertools
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.ids import (
    EPOCH_MS,
    ID_PATTERN,
    MAX_ID,
    MAX_SEQUENCE,
    NODE_BITS,
    SEQUENCE_BITS,
    SnowflakeIds,
    parse_id,
)

T0 = EPOCH_MS + 400 * 24 * 3600 * 1000  # some time in 2025


def _ms_of(snowflake: int) -> int:
    return (snowflake >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_MS


def _node_of(snowflake: int) -> int:
    return (snowflake >> SEQUENCE_BITS) & ((1 << NODE_BITS) - 1)


def test_100k_ids_are_unique_and_strictly_increasing() -> None:
    gen = SnowflakeIds(node=3)
    ids = [gen.next_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert all(0 < i <= MAX_ID for i in (ids[0], ids[-1]))


def test_ids_follow_the_clock_and_carry_the_node() -> None:
    now = [T0]
    gen = SnowflakeIds(node=7, now_ms=lambda: now[0])
    first = gen.next_id()
    now[0] += 5_000
    later = gen.next_id()
    assert _ms_of(first) == T0
    assert _ms_of(later) == T0 + 5_000
    assert _node_of(first) == _node_of(later) == 7
    # An id minted later is larger, whatever the sequence said before.
    assert first < later


def test_frozen_clock_exhausts_the_sequence_and_stays_monotonic() -> None:
    gen = SnowflakeIds(node=0, now_ms=lambda: T0)
    ids = [gen.next_id() for _ in range((MAX_SEQUENCE + 1) * 3)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    # 4096 per millisecond: the generator borrowed the next milliseconds.
    assert _ms_of(ids[-1]) == T0 + 2


def test_clock_stepping_back_never_goes_back() -> None:
    now = [T0]
    gen = SnowflakeIds(now_ms=lambda: now[0])
    before = [gen.next_id() for _ in range(10)]
    now[0] -= 60_000  # NTP stepped the clock back a minute
    after = [gen.next_id() for _ in range(10)]
    assert before + after == sorted(set(before + after))


def test_two_nodes_in_the_same_millisecond_never_collide() -> None:
    a = SnowflakeIds(node=1, now_ms=lambda: T0)
    b = SnowflakeIds(node=2, now_ms=lambda: T0)
    assert not {a.next_id() for _ in range(1000)} & {b.next_id() for _ in range(1000)}


def test_thread_safe() -> None:
    gen = SnowflakeIds(node=9)
    out: list[list[int]] = [[] for _ in range(4)]

    def work(bucket: list[int]) -> None:
        bucket.extend(gen.next_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for b in out for i in b]
    assert len(set(every)) == 20_000
    assert all(b == sorted(b) for b in out)


@pytest.mark.parametrize("node", [-1, 1024])
def test_node_out_of_range(node: int) -> None:
    with pytest.raises(ValueError, match="node"):
        SnowflakeIds(node=node)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("123456789012345678", 123456789012345678), (str(MAX_ID), MAX_ID)],
)
def test_parse_id_accepts(value: str, expected: int) -> None:
    assert parse_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "12a",
        " 12",
        "12 ",
        "+12",
        "-12",
        "1.5",
        "1e5",
        "0x10",
        "١٢٣",  # Arabic-Indic digits: isdigit() is True, int() would take them
        "¹²",  # superscripts: isdigit() True, int() raises
        "0",
        "0123",  # not the canonical form: never a lookup of id 123
        "00000000000000000000",  # 20 characters
        str(MAX_ID + 1),
        "99999999999999999999999",
        0,
        -1,
        42,  # ids travel as strings
        MAX_ID + 1,
        True,
        False,
        1.0,
        None,
        [1],
    ],
)
def test_parse_id_rejects_with_a_422(value: object) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_id(value, "post_id")  # type: ignore[arg-type]
    assert info.value.status == 422
    assert info.value.details == {"field": "post_id"}


def _accepted(text: str) -> bool:
    try:
        parse_id(text)
    except ValidationFailed:
        return False
    return True


@settings(max_examples=500)
@given(
    st.one_of(
        st.integers(min_value=-10, max_value=2**64).map(str),
        st.from_regex(r"\A[0-9]{1,21}\Z"),
        st.text(max_size=21),
    )
)
def test_id_pattern_is_exactly_what_parse_id_accepts(text: str) -> None:
    # The OpenAPI schema states ID_PATTERN; a client that keeps to it is never refused.
    assert bool(re.fullmatch(ID_PATTERN, text)) == _accepted(text)


@pytest.mark.parametrize(
    "text", [str(MAX_ID), str(MAX_ID - 1), str(MAX_ID + 1), "1", "9" * 18, "9" * 19, "1" + "0" * 18]
)
def test_id_pattern_at_the_edges(text: str) -> None:
    assert bool(re.fullmatch(ID_PATTERN, text)) == _accepted(text)
