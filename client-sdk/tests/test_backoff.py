from __future__ import annotations

import pytest

from plaza_client.backoff import MAX_DELAY, Backoff, CloseAction, close_action


def test_ceiling_doubles_from_half_a_second_to_thirty() -> None:
    b = Backoff()
    assert [b.ceiling(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.ceiling(10_000) == MAX_DELAY  # no overflow after days of retrying


def test_full_jitter_stays_within_bounds() -> None:
    b = Backoff()
    for attempt in range(40):
        delay = b.next_delay()
        assert 0.0 <= delay <= min(30.0, 0.5 * 2**attempt)
    assert b.attempt == 40


def test_jitter_draws_from_zero_to_ceiling() -> None:
    calls: list[tuple[float, float]] = []

    def rand(lo: float, hi: float) -> float:
        calls.append((lo, hi))
        return hi

    b = Backoff(rand=rand)
    assert [b.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]
    assert calls == [(0.0, 0.5), (0.0, 1.0), (0.0, 2.0)]


def test_floor_and_reset() -> None:
    b = Backoff(rand=lambda lo, hi: lo)
    assert b.next_delay(floor=5.0) == 5.0
    b.next_delay()
    b.reset()
    assert b.attempt == 0 and b.ceiling() == 0.5


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="base"):
        Backoff(base=0)
    with pytest.raises(ValueError, match="base"):
        Backoff(base=2, cap=1)


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (None, CloseAction.RECONNECT),  # network loss
        (1006, CloseAction.RECONNECT),
        (1001, CloseAction.RECONNECT),
        (1012, CloseAction.RECONNECT),
        (4000, CloseAction.RECONNECT),
        (4001, CloseAction.RECONNECT),
        (4499, CloseAction.RECONNECT),
        (4008, CloseAction.RECONNECT_LATER),
        (4029, CloseAction.RECONNECT_LATER),
        (4401, CloseAction.REFRESH_THEN_RECONNECT),
        (1000, CloseAction.STOP),
        (1009, CloseAction.STOP),
        (1008, CloseAction.STOP),
        (4500, CloseAction.STOP),
        (4503, CloseAction.STOP),
        (4999, CloseAction.STOP),
    ],
)
def test_close_codes(code: int | None, action: CloseAction) -> None:
    assert close_action(code) is action
