"""The roles' timers: a job run at once, then every so many seconds, until the role stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(seconds: float, stop: asyncio.Event, job: Callable[[], Awaitable[object]], what: str) -> None:
    """Await `job()` now and then every `seconds` until `stop` is set. A failure (the database or Slack away) is
    logged as "`what` failed" and the next turn tries again: a timer never stops its role."""
    while not stop.is_set():
        try:
            await job()
        except Exception:
            log.warning("%s failed; will retry", what, exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass
