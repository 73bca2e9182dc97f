"""Keeps each role running: a role that fails is logged, counted and started again with backoff, while the other
roles go on. /healthz reports each role's state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from opsdraft.metrics import ROLE_RESTARTS, ROLE_UP

log = logging.getLogger(__name__)

RoleRun = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class RoleState:
    state: str = "starting"  # starting | running | restarting | stopped
    restarts: int = 0
    last_error: str | None = None
    since: float = field(default_factory=time.time)


class Health:
    """The process's roles, as /healthz shows them."""

    def __init__(self) -> None:
        self.roles: dict[str, RoleState] = {}

    def ok(self) -> bool:
        return all(r.state in ("starting", "running") for r in self.roles.values())

    def report(self) -> dict:
        return {"status": "ok" if self.ok() else "degraded",
                "roles": {name: {"state": r.state, "restarts": r.restarts, "last_error": r.last_error}
                          for name, r in self.roles.items()}}


async def supervise(name: str, run: RoleRun, stop: asyncio.Event, health: Health, first_delay: float = 1.0,
                    max_delay: float = 60.0, healthy_after: float = 60.0) -> None:
    """Run `run(attempt_stop)` until `stop` is set, starting it again after a failure (1 s, 2 s, ... up to a
    minute; back to 1 s once it ran `healthy_after` seconds). Each attempt gets its own stop event, set when the
    attempt ends, so parts of a failed attempt that are still running wind down before the next one starts."""
    state = health.roles.setdefault(name, RoleState())
    delay = first_delay
    while not stop.is_set():
        attempt_stop = asyncio.Event()
        mirror = asyncio.create_task(_set_when(stop, attempt_stop))
        started = time.monotonic()
        state.state, state.since = "running", time.time()
        ROLE_UP.labels(name).set(1)
        try:
            await run(attempt_stop)
            if stop.is_set():
                break
            raise RuntimeError("the role returned while the process was running")
        except Exception as exc:
            attempt_stop.set()  # what is left of the failed attempt winds down during the backoff
            if stop.is_set():
                break
            ROLE_UP.labels(name).set(0)
            ROLE_RESTARTS.labels(name).inc()
            state.state, state.restarts, state.since = "restarting", state.restarts + 1, time.time()
            state.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if time.monotonic() - started >= healthy_after:
                delay = first_delay
            log.error("role %s failed (%s); starting it again in %.1fs", name, state.last_error, delay,
                      exc_info=exc)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, max_delay)
        finally:
            attempt_stop.set()
            mirror.cancel()
    state.state = "stopped"
    ROLE_UP.labels(name).set(0)


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
