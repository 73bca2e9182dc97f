"""Reconcile on start, for the embedded broker: what a kill -9 of `opsdraft run` lost is recovered from the database.

The embedded Tansu broker keeps its topics in memory, so when `opsdraft run` dies every message on them dies too:
an outbox row the relay marked sent may never have reached its consumer. The database knows every effect that
did happen, so at start (before any role runs) this:

- forgets the stored consumer positions (`consumer_offsets`): they count offsets of a log that is gone, and the
  fresh broker numbers its messages from 0 again;
- puts back in the outbox (clears `sent_at` of) each sent row whose effect is missing:
  a draft request with no draft of its `request_id`; a "draft ready" whose draft is pending and was never posted
  (no `slack_ts`); an incident event the bot never recorded as posted (`audit_log`, action POSTED_EVENT);
  every index update still in the outbox (re-indexing is an upsert).
  Their consumers are idempotent on exactly these records, so nothing is doubled.
- Approved reply messages (`ticket-replies`) are not re-sent: whether an outside reader of the topic got one
  cannot be known here, and a reply must not be sent twice. `/incident similar` answers are not re-sent either
  (Slack's response URL lives 30 minutes).

- Webhook messages answered 202 and never applied are kept to be produced again once the broker is up
  (opsdraft/receipts.py); the receipts of those applied are deleted.

README "Delivery" says what is guaranteed on the embedded broker."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select, update

from opsdraft import receipts
from opsdraft.db import Database
from opsdraft.models import AuditLog, ConsumerOffset, Draft, DraftStatus, Outbox
from opsdraft.settings import Settings

log = logging.getLogger(__name__)

POSTED_EVENT = "incident.event_posted"  # the bot's record that an incident event reached Slack


@dataclass
class Reconciled:
    positions_forgotten: int = 0
    resent: dict[str, int] = field(default_factory=dict)  # topic -> rows put back in the outbox
    receipts: int = 0  # webhook messages never applied, to be produced again (opsdraft/receipts.py)


def started_embedded_here(data_dir: Path) -> bool:
    """Whether this process started the embedded broker recorded in data_dir (opsdraft/broker.py writes its pid
    and this process's pid there): only then is the broker known to be fresh and in memory."""
    import os

    try:
        _, parent = (int(x) for x in (data_dir / "broker.pid").read_text().split())
    except (OSError, ValueError):
        return False
    return parent == os.getpid()


def _unposted_events(rows: list[Outbox], posted: list[tuple[str, str, datetime]]) -> list[int]:
    """Incident events (outbox rows) with no post recorded at or after they were queued. Rows and posts of one
    (incident, event) are matched in time order, each post to the earliest row it can follow, so an event that
    happens twice (closed, reopened, closed) needs two posts."""
    posts: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for incident, event, at in sorted(posted, key=lambda p: p[2]):
        posts[incident, event].append(at)
    lost = []
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        key = (str(row.payload.get("incident_id")), str(row.payload.get("event")))
        times = posts[key]
        match = next((i for i, at in enumerate(times) if at >= row.created_at), None)
        if match is None:
            lost.append(row.id)
        else:
            del times[: match + 1]  # earlier posts belong to earlier rows or to rows already retained away
    return lost


def reconcile(db: Database, settings: Settings) -> Reconciled:
    """Run once at start, with a fresh in-memory broker, before any role runs (see the module's docstring)."""
    t = settings.topics
    out = Reconciled()
    with db.session() as s:
        out.receipts = receipts.keep_unapplied(s, receipts.consumers_group(settings))  # before offsets go
        out.positions_forgotten = s.execute(delete(ConsumerOffset)).rowcount
        sent = list(s.scalars(select(Outbox).where(Outbox.sent_at.is_not(None), Outbox.topic.in_(
            [t.draft_requests, t.drafts_ready, t.incident_events, t.index_updates])).order_by(Outbox.id)))
        by_topic: dict[str, list[Outbox]] = defaultdict(list)
        for row in sent:
            by_topic[row.topic].append(row)
        lost: dict[str, list[int]] = {}

        requests = by_topic[t.draft_requests]
        made = set(s.scalars(select(Draft.request_id).where(
            Draft.request_id.in_([r.payload.get("request_id") for r in requests]))))
        lost[t.draft_requests] = [r.id for r in requests if r.payload.get("request_id") not in made]

        ready = by_topic[t.drafts_ready]
        waiting = set(s.scalars(select(Draft.id).where(
            Draft.id.in_([r.payload.get("draft_id") for r in ready]), Draft.slack_ts.is_(None),
            Draft.status == DraftStatus.pending)))
        lost[t.drafts_ready] = [r.id for r in ready if r.payload.get("draft_id") in waiting]

        events = by_topic[t.incident_events]
        posted = [(p.object_id, str(p.detail.get("event")), p.at) for p in s.scalars(select(AuditLog).where(
            AuditLog.action == POSTED_EVENT,
            AuditLog.object_id.in_({str(r.payload.get("incident_id")) for r in events})))]
        lost[t.incident_events] = _unposted_events(events, posted)

        lost[t.index_updates] = [r.id for r in by_topic[t.index_updates]]

        for topic, ids in lost.items():
            if ids:
                s.execute(update(Outbox).where(Outbox.id.in_(ids)).values(sent_at=None))
                out.resent[topic] = len(ids)
    return out


def on_start(db: Database, settings: Settings) -> Reconciled | None:
    """The runner's hook: reconcile when this process runs the embedded (in-memory) broker, else nothing."""
    if settings.kafka_bootstrap_servers or not started_embedded_here(settings.data_dir):
        return None
    done = reconcile(db, settings)
    if done.resent or done.positions_forgotten or done.receipts:
        log.info("embedded broker started empty: forgot %d consumer positions; re-sending %s and %d webhook "
                 "messages never applied", done.positions_forgotten, done.resent or "nothing", done.receipts)
    return done
