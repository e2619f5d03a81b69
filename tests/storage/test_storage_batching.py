"""TurnBatcher: the questions of one loop turn are one look-up; answers go to each asker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage.batching import TurnBatcher


class _Lookup:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail

    async def __call__(self, keys: Sequence[int]) -> dict[int, str]:
        self.calls.append(list(keys))
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("database away")
        return {k: f"v{k}" for k in keys if k % 2 == 0}


async def test_one_turns_questions_are_one_lookup_in_chunks() -> None:
    lookup = _Lookup()
    batcher = TurnBatcher(lookup, max_batch=4)
    answers = await asyncio.gather(*(batcher.get(k) for k in [1, 2, 3, 4, 5, 6, 2]))
    assert answers == [None, "v2", None, "v4", None, "v6", "v2"]
    # Six distinct keys, chunks of four: two statements for seven questions.
    assert lookup.calls == [[1, 2, 3, 4], [5, 6]]


async def test_later_turns_get_lookups_of_their_own() -> None:
    lookup = _Lookup()
    batcher = TurnBatcher(lookup, max_batch=10)
    assert await batcher.get(2) == "v2"
    assert await batcher.get(4) == "v4"
    assert lookup.calls == [[2], [4]]


async def test_a_failed_lookup_fails_every_asker_and_the_next_turn_retries() -> None:
    lookup = _Lookup(fail=True)
    batcher = TurnBatcher(lookup, max_batch=10)
    results = await asyncio.gather(batcher.get(2), batcher.get(3), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    lookup.fail = False
    assert await batcher.get(2) == "v2"


async def test_an_asker_that_gives_up_does_not_disturb_the_others() -> None:
    lookup = _Lookup()
    batcher = TurnBatcher(lookup, max_batch=10)
    quitter = asyncio.create_task(batcher.get(2))
    stayer = asyncio.create_task(batcher.get(4))
    await asyncio.sleep(0)
    quitter.cancel()
    assert await stayer == "v4"
    with pytest.raises(asyncio.CancelledError):
        await quitter
