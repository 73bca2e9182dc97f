"""The consumers against the real broker: dead letters, redelivery, commit-after-database-commit."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from consumers.worker import run as run_consumers
from opsdraft.bus import Bus, consume, read_topic
from opsdraft.models import Alert, Incident, LogEvent, Outbox, Ticket, TimelineEntry
from opsdraft.offsets import done_count
from opsdraft.outbox import relay_outbox
from opsdraft.privacy import unseal
from tests.conftest import until

pytestmark = pytest.mark.broker

FIRING = {"version": "4", "status": "firing", "groupKey": "g", "alerts": [{
    "status": "firing", "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
    "annotations": {"summary": "errors from 198.51.100.23"}, "startsAt": "2026-11-20T14:02:10Z",
    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "fp1"}]}


def done(db) -> int:
    with db.session() as s:
        return done_count(s)


def count(db, col, *where):
    with db.session() as s:
        return s.scalar(select(func.count(col)).where(*where))


async def test_pipeline_dead_letters_and_redelivery(rt):
    t = rt.settings.topics
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(rt, stop))
    try:
        await rt.bus.send(t.alerts, FIRING)
        await rt.bus.send(t.alerts, FIRING)  # the same event again: changes nothing
        await rt.bus.send(t.logs, {"timestamp": "2026-11-20T14:03:00Z", "service": "checkout", "level": "ERROR",
                                   "message": "refused for bob@example.com"})
        await rt.bus.send(t.tickets, {"id": "T-7", "subject": "Down?", "body": "site down", "requester": "Bob",
                                      "created_at": "2026-11-20T14:05:00Z"})
        await rt.bus.send(t.alerts, b'{"alerts": [ truncated')
        await rt.bus.send(t.alerts, b"\xff\xfe not utf-8")
        await rt.bus.send(t.logs, {"timestamp": "2026-11-20T14:03:00Z", "service": "x", "level": "LOUD",
                                   "message": "card 4111 1111 1111 1111"})
        dead = await read_topic(rt.bus, t.dead_letters, 3)
        await until(lambda: count(rt.db, Ticket.id) == 1 and count(rt.db, LogEvent.id) == 1
                    and done(rt.db) == 7)  # every message done: 4 applied, 3 dead-lettered
    finally:
        stop.set()
        await task
    assert count(rt.db, Incident.id) == 1 and count(rt.db, Alert.id) == 1
    with rt.db.session() as s:
        assert "198.51.100.23" not in s.scalar(select(Alert.text))
        assert "bob@example.com" not in s.scalar(select(LogEvent.message))
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == 3
    assert any("not JSON" in r for r in reasons) and any("not UTF-8" in r for r in reasons)
    assert any("level" in r for r in reasons)
    for d in dead:
        assert d["source"]["topic"] in (t.alerts, t.logs) and d["source"]["offset"] >= 0 and d["at"]
        assert "4111 1111 1111 1111" not in d["value_redacted"]  # dead letters are no way around redaction
        assert "4111" not in d["value_sealed"]  # the original travels only encrypted
    originals = sorted(unseal(rt.settings, d["value_sealed"]) for d in dead)
    assert originals[0] == b'{"alerts": [ truncated' and b"4111 1111 1111 1111" in originals[1]


async def test_offset_committed_only_after_database_commit(rt):
    """While the database fails, the consumer retries the message and commits no offset."""
    t = rt.settings.topics
    group = f"{rt.settings.consumer_group}-commit"
    attempts = []

    def handler(s, msg):
        attempts.append(msg.offset)
        if len(attempts) < 3:
            raise OperationalError("INSERT", {}, Exception("database is down"))
        s.add(Outbox(topic="x", payload=msg.json()))

    await rt.bus.send(t.logs, {"n": 1})
    stop = asyncio.Event()
    task = asyncio.create_task(consume(rt.bus, rt.db, [t.logs], group, handler, t.dead_letters,
                                       rt.redactor.redact, stop))
    try:
        await until(lambda: len(attempts) >= 1)
        assert await _committed(rt.bus, group, t.logs) is None and count(rt.db, Outbox.id) == 0
        await until(lambda: count(rt.db, Outbox.id) == 1)
        deadline = time.monotonic() + 20
        while await _committed(rt.bus, group, t.logs) != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert await _committed(rt.bus, group, t.logs) == 1
    finally:
        stop.set()
        await task
    assert len(attempts) == 3


async def _committed(bus: Bus, group: str, topic: str) -> int | None:
    """The group's committed offsets on `topic`, summed over partitions (None: nothing committed)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(bootstrap_servers=bus.bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()  # never subscribes, so it does not join (or disturb) the group
    try:
        parts = probe.partitions_for_topic(topic) or set()
        if not parts:
            await probe._client.force_metadata_update()
            parts = probe.partitions_for_topic(topic) or set()
        offsets = [await probe.committed(TopicPartition(topic, p)) for p in parts]
    finally:
        await probe.stop()
    done = [o for o in offsets if o is not None and o >= 0]
    return sum(done) if done else None


async def test_outbox_relay_produces_and_marks_sent(rt):
    from opsdraft.events import IndexUpdate, publish

    with rt.db.session() as s:
        publish(s, rt.settings.topics, IndexUpdate(kind="runbooks"))
    stop = asyncio.Event()
    task = asyncio.create_task(relay_outbox(rt.db, rt.bus, stop, interval=0.05))
    try:
        (msg,) = await read_topic(rt.bus, rt.settings.topics.index_updates, 1)
        await until(lambda: count(rt.db, Outbox.id, Outbox.sent_at.is_not(None)) == 1)
    finally:
        stop.set()
        await task
    assert msg == IndexUpdate(kind="runbooks").model_dump(mode="json")


async def test_plain_text_logs_are_parsed_or_dead_lettered(rt):
    t = rt.settings.topics
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(rt, stop))
    try:
        await rt.bus.send(t.logs, b"<11>1 2026-11-20T14:02:05Z web-01 checkout 77 - - disk almost full on /var")
        await rt.bus.send(t.logs, b"2026-11-20T14:02:06Z WARN checkout slow query 2300ms")
        await rt.bus.send(t.logs, b"this is not a log line")
        (dead,) = await read_topic(rt.bus, t.dead_letters, 1)
        await until(lambda: done(rt.db) == 3)
    finally:
        stop.set()
        await task
    with rt.db.session() as s:
        rows = s.execute(select(LogEvent.service, LogEvent.level, LogEvent.message).order_by(LogEvent.at)).all()
    assert [tuple(r) for r in rows] == [("checkout", "ERROR", "disk almost full on /var"),
                                        ("checkout", "WARNING", "slow query 2300ms")]
    assert "known shape" in dead["reason"]


async def test_two_consumers_in_one_group_share_the_work_once(rt):
    """Two consumer instances in one group split the partitions; every message is applied exactly once."""
    from consumers.worker import Dispatcher

    t = rt.settings.topics
    for i in range(600):
        await rt.bus.producer.send(t.logs, json.dumps({
            "timestamp": f"2026-11-20T14:{i // 60:02d}:{i % 60:02d}Z", "service": f"svc{i % 6}", "level": "INFO",
            "message": f"line {i}"}).encode(), key=f"svc{i % 6}".encode())
    await rt.bus.producer.flush()
    seen: list[set[int]] = [set(), set()]

    class Recording(Dispatcher):
        def __init__(self, n):
            super().__init__(rt)
            self.n = n

        def parse(self, msg):
            seen[self.n].add(msg.partition)
            return super().parse(msg)

    stop = asyncio.Event()
    group = f"{rt.settings.consumer_group}-shared"
    tasks = [asyncio.create_task(consume(rt.bus, rt.db, [t.logs], group, Recording(n), t.dead_letters,
                                         rt.redactor.redact, stop)) for n in (0, 1)]
    try:
        await until(lambda: count(rt.db, LogEvent.id) >= 600, timeout=60)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    with rt.db.session() as s:
        messages = s.scalars(select(LogEvent.message)).all()
    assert len(messages) == 600 and len(set(messages)) == 600
    assert seen[0] and seen[1]  # both instances got partitions


async def test_consumer_lag_is_exported_per_partition(rt):
    """opsdraft_consumer_lag: what is left on the partition after each committed batch."""
    from opsdraft.metrics import CONSUMER_LAG

    t = rt.settings.topics
    group = f"{rt.settings.consumer_group}-lag"
    for i in range(700):  # one key: one partition, more than one fetched batch (at most 500 records)
        await rt.bus.producer.send(t.logs, json.dumps({"n": i}).encode(), key=b"one")
    await rt.bus.producer.flush()
    handled, stop = [], asyncio.Event()

    def handler(s, msg):
        handled.append(msg.partition)
        stop.set()  # the loop finishes this batch, commits it and ends

    await consume(rt.bus, rt.db, [t.logs], group, handler, t.dead_letters, rt.redactor.redact, stop)
    partition = str(handled[0])
    first = len(handled)
    assert 0 < first < 700
    assert CONSUMER_LAG.labels(group, t.logs, partition)._value.get() == 700 - first

    stop = asyncio.Event()
    task = asyncio.create_task(consume(rt.bus, rt.db, [t.logs], group, lambda s, m: handled.append(m.partition),
                                       t.dead_letters, rt.redactor.redact, stop))
    try:
        await until(lambda: len(handled) >= 700)
        await until(lambda: CONSUMER_LAG.labels(group, t.logs, partition)._value.get() == 0)
    finally:
        stop.set()
        await task
    assert len(handled) == 700


def _alert(fp: str, service: str, status: str, at: str, ends: str | None = None) -> dict:
    return {"fingerprint": fp, "name": "HighErrorRate", "service": service, "status": status, "severity": "critical",
            "summary": "errors", "starts_at": at, "ends_at": ends}


async def test_a_backlog_is_read_before_quiet_incidents_close(rt):
    """A backlog of old alerts (a restart after downtime, a replay): checkout's alert resolved long ago in its own
    time, then thousands of other alerts, then checkout fires again within the reopen window. Were the quiet-period
    closer to run mid-backlog it would close checkout's incident and reopen it at the re-fire (drafting a postmortem
    the reopen supersedes). It waits until the consumers have caught up: one close, no reopen."""
    t = rt.settings.topics
    backlog = [_alert("co-1", "checkout", "firing", "2026-11-20T14:00:00Z"),
               _alert("co-1", "checkout", "resolved", "2026-11-20T14:00:00Z", "2026-11-20T14:01:00Z")]
    backlog += [_alert(f"f-{i}", "filler", "firing", "2026-11-20T14:02:00Z") for i in range(6000)]
    backlog += [_alert("co-1", "checkout", "firing", "2026-11-20T14:04:00Z"),
                _alert("co-1", "checkout", "resolved", "2026-11-20T14:04:00Z", "2026-11-20T14:05:00Z")]
    for body in backlog:  # one key: one partition, read in this order
        await rt.bus.producer.send(t.alerts, json.dumps(body).encode(), key=b"backlog")
    await rt.bus.producer.flush()
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(run_consumers(rt, stop))
    try:
        await until(lambda: done(rt.db) == len(backlog), timeout=120)
        read_in = time.monotonic() - started
        await until(lambda: count(rt.db, Incident.id, Incident.service == "checkout",
                                  Incident.status == "closed") == 1, timeout=30)
    finally:
        stop.set()
        await task
    assert read_in > 2, "the backlog must take several of the closer's 1 s rounds to read, or this proves nothing"
    with rt.db.session() as s:
        incident = s.scalar(select(Incident).where(Incident.service == "checkout"))
        kinds = list(s.scalars(select(TimelineEntry.kind).where(TimelineEntry.incident_id == incident.id)))
    assert "reopened" not in kinds and kinds.count("closed") == 1, kinds
    assert incident.closed_at.isoformat().startswith("2026-11-20T14:05:00")
