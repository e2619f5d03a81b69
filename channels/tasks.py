"""Stopping a background task for sure.

`task.cancel(); await task` hangs for ever when something inside the task swallows the
cancellation (Python 3.11's asyncio.wait_for can, when its timeout and the cancel land
together, and so can library code that catches BaseException): the task runs on as if
nothing happened. A shutdown must not depend on that, so the cancel is repeated until the
task is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("plaza.tasks")

# How long one cancel is given before it is sent again.
RECANCEL_S = 1.0


async def cancel_and_wait(task: asyncio.Task[object] | asyncio.Future[object] | None) -> None:
    """Cancel `task` and wait until it is done, cancelling again while it is not."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    if not task.cancelled():
        with contextlib.suppress(asyncio.CancelledError):
            error = task.exception()
            if error is not None:
                log.debug("task %r ended with %r while stopping", task, error)
