"""Reconcile on start (embedded broker): exactly the sent outbox rows whose effect is missing go back to the outbox,
and the stored consumer positions of the lost log are forgotten. The whole flow under kill -9 is
tests/test_crash_embedded.py; this pins down each rule, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select

from opsdraft.models import AuditLog, ConsumerOffset, Draft, Outbox, utcnow
from opsdraft.reconcile import POSTED_EVENT, on_start, reconcile


def row(s, topic: str, payload: dict, sent: bool = True, at=None) -> Outbox:
    at = at or utcnow() - timedelta(minutes=10)
    o = Outbox(topic=topic, key="k", payload=payload, created_at=at, sent_at=at if sent else None)
    s.add(o)
    s.flush()
    return o


def draft(s, request_id: str, slack_ts: str | None = None, status: str = "pending") -> Draft:
    d = Draft(request_id=request_id, kind="postmortem", subject_type="incident", subject_id=1, title="t", body="b",
              model="none", slack_ts=slack_ts, status=status)
    s.add(d)
    s.flush()
    return d


def test_only_what_never_arrived_is_sent_again(database, make_settings):
    settings = make_settings()
    t = settings.topics
    now = utcnow()

    def event(name: str, minutes_ago: int) -> int:
        return row(s, t.incident_events, {"event": name, "incident_id": 7}, at=now - timedelta(minutes=minutes_ago)).id

    with database.session() as s:
        made = draft(s, "made", slack_ts="1.1")
        waiting = draft(s, "waiting")
        decided = draft(s, "decided", status="rejected")
        ids = {
            "request made": row(s, t.draft_requests, {"request_id": "made"}).id,
            "request lost": row(s, t.draft_requests, {"request_id": "lost"}).id,
            "ready posted": row(s, t.drafts_ready, {"draft_id": made.id}).id,
            "ready lost": row(s, t.drafts_ready, {"draft_id": waiting.id}).id,
            "ready decided": row(s, t.drafts_ready, {"draft_id": decided.id}).id,
            # Incident 7 opened (posted), closed (posted), reopened (lost), closed again (lost).
            "opened": event("opened", 9), "closed 1": event("closed", 8), "reopened": event("reopened", 7),
            "closed 2": event("closed", 6),
            "index": row(s, t.index_updates, {"kind": "incident", "id": 7}).id,
            "reply": row(s, t.ticket_replies, {"ticket_id": "T-1"}).id,
            "unsent": row(s, t.draft_requests, {"request_id": "queued"}, sent=False).id,
        }
        for event, minutes in (("opened", 8.5), ("closed", 7.5)):
            s.add(AuditLog(actor="opsdraft", action=POSTED_EVENT, object_type="incident", object_id="7",
                           detail={"event": event}, at=now - timedelta(minutes=minutes)))
        s.add(ConsumerOffset(group_id="opsdraft-bot", topic=t.drafts_ready, partition=0, next_offset=42, ahead=[]))
    done = reconcile(database, settings)
    assert done.positions_forgotten == 1
    assert done.resent == {t.draft_requests: 1, t.drafts_ready: 1, t.incident_events: 2, t.index_updates: 1}
    with database.session() as s:
        unsent = {o.id for o in s.scalars(select(Outbox).where(Outbox.sent_at.is_(None)))}
        assert s.scalars(select(ConsumerOffset)).all() == []
    assert {name for name, i in ids.items() if i in unsent} == {
        "request lost", "ready lost", "reopened", "closed 2", "index", "unsent"}


def test_runs_only_for_the_embedded_broker_this_process_started(database, make_settings, tmp_path):
    settings = make_settings(data_dir=tmp_path / "data")
    with database.session() as s:
        row(s, settings.topics.draft_requests, {"request_id": "lost"})
    assert on_start(database, settings) is None  # no embedded broker recorded here
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "broker.pid").write_text(f"12345 {os.getpid() + 1}")
    assert on_start(database, settings) is None  # another process's broker
    assert on_start(database, make_settings(data_dir=tmp_path / "data", kafka_bootstrap_servers="kafka:9092")) is None
    (tmp_path / "data" / "broker.pid").write_text(f"12345 {os.getpid()}")
    assert on_start(database, settings).resent == {settings.topics.draft_requests: 1}


def test_webhook_receipts_keep_exactly_what_was_never_applied(database, make_settings, kafka_bootstrap):
    """On the embedded broker a webhook's 202 is backed by a receipt (opsdraft/receipts.py): the consumers' timer
    deletes those applied; at start those never applied are produced again, in the order they came, once."""
    import asyncio
    import json
    import uuid

    from opsdraft import receipts
    from opsdraft.broker import ensure_topics
    from opsdraft.bus import Bus, read_topic
    from opsdraft.models import WebhookReceipt

    settings = make_settings(consumer_group=f"receipts-{uuid.uuid4().hex[:6]}")
    t, group = settings.topics, receipts.consumers_group(settings)
    record = receipts.recorder(database, settings)
    body = lambda i: json.dumps({"n": i}).encode()  # noqa: E731
    record(t.logs, None, {}, [(0, i, body(i)) for i in range(6)])  # offsets 0..5 of logs[0]
    record(t.changes, "checkout", {"x-github-event": "deployment"}, [(1, 0, body(6))])
    with database.session() as s:  # the consumers applied logs[0] up to 2, and 4 out of order; nothing of changes
        s.add(ConsumerOffset(group_id=group, topic=t.logs, partition=0, next_offset=3, ahead=[4]))
        s.add(ConsumerOffset(group_id="another-group", topic=t.changes, partition=1, next_offset=9, ahead=[]))
    with database.session() as s:
        assert receipts.forget_applied(s, group) == 3  # below the stored offset: 0, 1, 2
    # A kill -9 now: the broker's log is gone. Reconcile keeps 3 and 5 of logs (4 was applied) and the change.
    done = reconcile(database, settings)
    assert done.receipts == 3 and done.positions_forgotten == 2
    with database.session() as s:
        waiting = [(r.topic, r.key, r.headers, r.partition) for r in s.scalars(select(WebhookReceipt)
                                                                               .order_by(WebhookReceipt.id))]
        assert '{"n"' not in s.scalars(select(WebhookReceipt.sealed)).first()  # the body is kept encrypted
    assert waiting == [(t.logs, None, {}, None), (t.logs, None, {}, None),
                       (t.changes, "checkout", {"x-github-event": "deployment"}, None)]

    async def again():
        await ensure_topics(kafka_bootstrap, [t.logs, t.changes])
        bus = await Bus(kafka_bootstrap).start()
        try:
            assert await receipts.produce_again(database, bus, settings) == 3
            assert await receipts.produce_again(database, bus, settings) == 0  # each once
            return [m["n"] for m in await read_topic(bus, t.logs, 2)], await read_topic(bus, t.changes, 1)
        finally:
            await bus.stop()

    logs, changes = asyncio.run(again())
    assert sorted(logs) == [3, 5] and changes == [{"n": 6}]  # unkeyed lines: any partition, as first produced
    with database.session() as s:  # recorded where they went now, for the next kill
        assert all(r.partition is not None and r.offset is not None for r in s.scalars(select(WebhookReceipt)))
