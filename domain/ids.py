"""64-bit, time-ordered ids (snowflake layout): the id is the cursor and the feed score.

Layout: 41 bits of milliseconds since EPOCH_MS | 10 bits of node | 12 bits of sequence.
41 bits of ms last ~69 years; 10 node bits let a fleet of 1024 processes mint ids without
talking to each other; 12 sequence bits give 4096 ids per ms per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from domain.errors import ValidationFailed

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_ID = (1 << 63) - 1  # fits a signed BIGINT column


def _decimals_up_to(limit: int) -> str:
    """A regular expression of exactly the decimal strings 1..limit in canonical form (no
    sign, no leading zero): what `parse_id` accepts, for schemas to state."""
    digits = str(limit)
    shorter = f"[1-9][0-9]{{0,{len(digits) - 2}}}"
    same_length = []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            same_length.append(f"{digits[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    same_length.append(digits)
    return f"^(?:{'|'.join([shorter, *same_length])})$"


# Every id `parse_id` accepts and nothing else (the OpenAPI schema states it).
ID_PATTERN = _decimals_up_to(MAX_ID)


class SnowflakeIds:
    """Thread-safe generator; monotonic even if the wall clock steps back."""

    def __init__(self, node: int = 0, now_ms: Callable[[], int] | None = None) -> None:
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node must be in 0..{MAX_NODE}")
        self._node = node
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            ms = max(self._now_ms() - EPOCH_MS, self._last_ms)
            if ms == self._last_ms:
                self._sequence = (self._sequence + 1) & MAX_SEQUENCE
                if self._sequence == 0:
                    ms += 1  # sequence exhausted: borrow the next millisecond
            else:
                self._sequence = 0
            self._last_ms = ms
            return (
                (ms << (NODE_BITS + SEQUENCE_BITS)) | (self._node << SEQUENCE_BITS) | self._sequence
            )


def parse_id(text: str, field: str = "id") -> int:
    """The one parser of ids (REST paths and bodies, WebSocket arguments, channel names).

    Ids travel as decimal strings in their canonical form: ASCII digits, no sign, no
    leading zero, at most 19 digits and within a signed BIGINT. Anything else is a 422
    naming the field, never a 500 and never a lookup of some other id.
    """
    if not (
        isinstance(text, str)
        and 0 < len(text) <= 19
        and text.isascii()
        and text.isdigit()
        and text[0] != "0"
    ):
        raise ValidationFailed(f"{field} must be a decimal id string", details={"field": field})
    number = int(text)
    if number > MAX_ID:
        raise ValidationFailed(f"{field} is out of range", details={"field": field})
    return number
