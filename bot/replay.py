"""Replay protection for Slack's signed requests. Bolt checks a request's signature and that its timestamp is
within 5 minutes, so a captured slash command or click resent in that window verifies again. Its signature
(which covers timestamp and body) is remembered in the database for the window, so the request runs once
even when several processes serve Slack."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from opsdraft.db import Database
from opsdraft.models import SeenSlackRequest, utcnow

log = logging.getLogger(__name__)

# Slack's window is 5 minutes either side of now; a request is remembered a little longer than it verifies.
WINDOW = timedelta(minutes=11)
# Expired rows are deleted this often, not in every request's transaction: before the ack, that delete took the
# database's write lock early and held it through the insert (SQLite has one writer; the Events API listeners
# write after their acks), and acks queued behind it (bench/slack). A row kept longer blocks nothing: the
# signature covers a timestamp that no longer verifies.
PRUNE_EVERY_S = 60.0


def first_time(db: Database, signature: str, prune: bool = True) -> bool:
    """Record `signature` (deleting expired ones first when `prune`); False when it was recorded before (a
    replay)."""
    try:
        with db.session() as s:
            if prune:
                s.execute(delete(SeenSlackRequest).where(SeenSlackRequest.seen_at < utcnow() - WINDOW))
            s.add(SeenSlackRequest(signature=signature[:100]))
    except IntegrityError:
        return False
    return True


def middleware(db: Database):
    """A Bolt global middleware: after Bolt's own signature check, before any listener or ack. A replay is
    answered 200 with nothing run, as a retry is: a double submit from a flaky client sees no error either."""
    from slack_bolt.response import BoltResponse

    next_prune = [0.0]  # monotonic time of this process's next delete of expired rows

    async def once(req, resp, next):
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        # Socket Mode requests carry no signature: they come over our own authenticated connection.
        if signature and not await asyncio.to_thread(first_time, db, signature, _due(next_prune)):
            # Acked like a Slack retry (http.py), and run no listener: the first one did the work.
            log.warning("ignored a replayed Slack request (its signature was already used)")
            return BoltResponse(status=200, body="")
        return await next()

    return once


def _due(next_prune: list[float]) -> bool:
    """Whether expired rows are to be deleted now; if so, the next time is set."""
    now = time.monotonic()
    if now < next_prune[0]:
        return False
    next_prune[0] = now + PRUNE_EVERY_S
    return True
