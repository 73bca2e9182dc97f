"""Retention: what opsdraft stores and no longer needs is deleted on a schedule, so the database stays bounded.

- Log lines no incident holds, older (by their own timestamp) than `retention_unattached_logs_days`. A line an
  incident holds is evidence for its postmortem and is never deleted here.
- Outbox rows produced (`sent_at` set) longer ago than `retention_outbox_sent_days`: the topic holds the message;
  the row is kept a while for inspection and for the embedded broker's reconcile (opsdraft/reconcile.py).
- Placeholders of log scopes (`log:<service>`) no log line used within that same window (`last_seen_at`, the
  latest line's own time, kept to the hour). Such a scope holds one row per distinct address or name a service
  ever logged; once deleted, a value seen again gets a new number. Placeholders of incidents, tickets and changes
  belong to records that are kept, and are kept with them. The per-scope counters stay (a few rows per service),
  so a number is never given twice.
- Dead letters are not in the database: they live on the dead-letters topic, under the broker's retention.

Deletes go in chunks of `retention_batch_rows`, each its own short transaction, so ingest is never blocked long
(SQLite has one writer)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from opsdraft.db import Database
from opsdraft.models import LogEvent, Outbox, Placeholder, utcnow
from opsdraft.periodic import every
from opsdraft.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Purged:
    logs: int = 0
    placeholders: int = 0
    outbox: int = 0
    passes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.logs + self.placeholders + self.outbox


def _cutoff(now: datetime, days: float) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def _delete_logs_chunk(s: Session, cutoff: datetime, limit: int) -> int:
    ids = select(LogEvent.id).where(LogEvent.incident_id.is_(None), LogEvent.at < cutoff).limit(limit)
    # The conditions are repeated on the DELETE itself: a line an incident attached meanwhile (PostgreSQL
    # re-checks them on the row's latest version) is never deleted.
    return s.execute(delete(LogEvent).where(LogEvent.id.in_(ids.scalar_subquery()), LogEvent.incident_id.is_(None),
                                            LogEvent.at < cutoff).execution_options(synchronize_session=False)).rowcount


def _delete_placeholders_chunk(s: Session, cutoff: datetime, limit: int) -> int:
    table = Placeholder.__table__
    expired = (table.c.scope.startswith("log:"), table.c.last_seen_at < cutoff)
    ids = select(table.c.id).where(*expired).limit(limit)
    # Conditions repeated, as for logs: a placeholder a line used meanwhile (last_seen_at moved) is kept.
    return s.execute(delete(table).where(table.c.id.in_(ids.scalar_subquery()), *expired)).rowcount


def _delete_outbox_chunk(s: Session, cutoff: datetime, limit: int) -> int:
    ids = select(Outbox.id).where(Outbox.sent_at.is_not(None), Outbox.sent_at < cutoff).limit(limit)
    return s.execute(delete(Outbox).where(Outbox.id.in_(ids.scalar_subquery()), Outbox.sent_at.is_not(None))
                     .execution_options(synchronize_session=False)).rowcount


def purge(db: Database, settings: Settings, now: datetime | None = None) -> Purged:
    """One retention pass: delete everything the settings say has expired, chunk by chunk."""
    now = now or utcnow()
    out = Purged()
    logs = _cutoff(now, settings.retention_unattached_logs_days)
    jobs = [("logs", logs, _delete_logs_chunk), ("placeholders", logs, _delete_placeholders_chunk),
            ("outbox", _cutoff(now, settings.retention_outbox_sent_days), _delete_outbox_chunk)]
    for name, cutoff, chunk in jobs:
        if cutoff is None:
            continue
        while True:
            with db.session() as s:
                n = chunk(s, cutoff, settings.retention_batch_rows)
            setattr(out, name, getattr(out, name) + n)
            if n < settings.retention_batch_rows:
                break
        out.passes.append(name)
    return out


async def run_retention(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Purge at start and then every `retention_interval_s`; a failure (database away) waits for the next turn."""

    async def once() -> None:
        done = await asyncio.to_thread(purge, db, settings)
        if done.total:
            log.info("retention deleted %d unattached log lines, %d log placeholders and %d sent outbox rows",
                     done.logs, done.placeholders, done.outbox)

    await every(settings.retention_interval_s, stop, once, "retention pass")
