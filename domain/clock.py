"""The real clock (the `Clock` port); tests use fakes that only move when told to."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
