"""The transactional outbox's relay: produces the rows `opsdraft.events.publish` queued, once their transaction
committed, then marks them sent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select

from opsdraft.bus import Bus
from opsdraft.db import Database
from opsdraft.models import Outbox, utcnow

log = logging.getLogger(__name__)


async def relay_outbox(db: Database, bus: Bus, stop: asyncio.Event, interval: float = 0.2,
                       transform: Callable[[str, dict], dict] | None = None) -> None:
    """Produce unsent outbox rows, then mark them sent. At-least-once: every consumer is idempotent.
    `transform` may change a payload on its way out (it is never written back). Sent rows are deleted by
    retention (consumers/retention.py, OPSDRAFT_RETENTION_OUTBOX_SENT_DAYS)."""
    while not stop.is_set():
        try:
            rows = await asyncio.to_thread(_unsent, db)
            for row_id, topic, key, payload in rows:
                if transform:
                    payload = await asyncio.to_thread(transform, topic, payload)
                await bus.send(topic, payload, key=key)
                await asyncio.to_thread(_mark_sent, db, row_id)
        except Exception:  # broker or database briefly away: try again on the next tick
            log.warning("outbox relay failed; retrying", exc_info=True)
            await asyncio.sleep(1)
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


def _unsent(db: Database) -> list[tuple[int, str, str | None, dict]]:
    with db.session() as s:
        rows = s.scalars(select(Outbox).where(Outbox.sent_at.is_(None)).order_by(Outbox.id).limit(100))
        return [(r.id, r.topic, r.key, r.payload) for r in rows]


def _mark_sent(db: Database, row_id: int) -> None:
    with db.session() as s:
        s.get(Outbox, row_id).sent_at = utcnow()
