"""Exactly-once by offsets (opsdraft/offsets.py) and poison-proof consume loops (opsdraft/bus.py), on the real
broker and both databases."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select

from consumers.worker import run as run_consumers
from opsdraft import offsets
from opsdraft.bus import BatchHandler, InvalidMessage, Message, consume, read_topic
from opsdraft.models import Alert, ConsumerOffset, Outbox
from opsdraft.offsets import Position
from tests.conftest import until

pytestmark = pytest.mark.broker


def _outbox_payloads(db) -> list:
    with db.session() as s:
        return [r.payload for r in s.scalars(select(Outbox).order_by(Outbox.id))]


async def _run(rt, topics, group, handler, until_check, **kw):
    stop = asyncio.Event()
    task = asyncio.create_task(consume(rt.bus, rt.db, topics, group, handler, rt.settings.topics.dead_letters,
                                       rt.redactor.redact, stop, **kw))
    try:
        await until(until_check)
    finally:
        stop.set()
        await task


async def test_byte_identical_messages_at_different_offsets_are_two_messages(rt):
    t = rt.settings.topics
    for _ in range(2):  # e.g. two identical `closed` events: both are real
        await rt.bus.send(t.incident_events, {"incident_id": 1, "event": "closed"}, key="1")

    def handler(s, msg):
        s.add(Outbox(topic="seen", payload={"offset": msg.offset}))

    await _run(rt, [t.incident_events], "g-identical", handler, lambda: len(_outbox_payloads(rt.db)) == 2)
    assert [p["offset"] for p in _outbox_payloads(rt.db)] == [0, 1]
    with rt.db.session() as s:
        row = s.scalar(select(ConsumerOffset).where(ConsumerOffset.group_id == "g-identical"))
        assert (row.next_offset, row.ahead) == (2, [])
        assert s.scalar(select(func.count()).select_from(ConsumerOffset)) == 1  # O(partitions), not O(messages)


async def test_alert_that_fires_resolves_and_fires_again_ends_firing(rt):
    """The same generic alert body sent fire / resolve / fire (same starts_at): the third is not a duplicate."""
    t = rt.settings.topics
    firing = {"name": "DiskFull", "service": "db", "status": "firing", "starts_at": "2026-11-20T14:00:00Z",
              "fingerprint": "disk-db-1", "severity": "warning"}
    for body in (firing, {**firing, "status": "resolved", "ends_at": "2026-11-20T14:05:00Z"}, firing):
        await rt.bus.send(t.alerts, body, key="disk-db-1")
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(rt, stop))

    def state():
        with rt.db.session() as s:
            done = offsets.done_count(s, t.alerts)
            return done, s.scalar(select(Alert.status))

    try:
        await until(lambda: state()[0] == 3)
    finally:
        stop.set()
        await task
    assert state() == (3, "firing")


async def test_consumer_seeks_to_the_offset_stored_with_the_effects(rt):
    """The broker's own commits may lag the database (or be lost with it): the stored offset wins, so messages
    applied before are never applied again."""
    t = rt.settings.topics
    for n in range(5):
        await rt.bus.send(t.logs, {"n": n}, key="one-partition")
    with rt.db.session() as s:  # as if offsets 0-2 were applied, and the broker commit after it was lost
        offsets.claim(s, "g-seek", [Position(t.logs, p, o) for p in range(16) for o in range(3)])
    seen = []

    def handler(s, msg):
        seen.append(msg.json()["n"])

    await _run(rt, [t.logs], "g-seek", handler, lambda: len(seen) >= 2)
    await asyncio.sleep(0.5)
    assert seen == [3, 4]


async def test_redelivered_batch_changes_nothing(rt):
    """The same messages handed to a batch apply once, however often they arrive."""
    from opsdraft.bus import _apply_batch

    class Recording(BatchHandler):
        def parse(self, msg):
            return msg.offset

        def apply(self, s, parsed):
            s.add(Outbox(topic="seen", payload={"offset": parsed}))

    msgs = [Message("logs-x", 0, o, None, b"{}", {}) for o in range(4)]
    assert sum(_apply_batch(rt.db, "g-redeliver", [(m, m.offset) for m in msgs], Recording()).values()) == 4
    assert sum(_apply_batch(rt.db, "g-redeliver", [(m, m.offset) for m in msgs[2:]], Recording()).values()) == 0
    assert len(_outbox_payloads(rt.db)) == 4


def test_out_of_order_completion_folds_into_next_offset(database):
    with database.session() as s:
        offsets.start(s, "g", {("t", 0): 10}, {})
    for o in (12, 11, 14):
        with database.session() as s:
            offsets.claim(s, "g", [Position("t", 0, o)])
    with database.session() as s:
        row = s.get(ConsumerOffset, ("g", "t", 0))
        assert (row.next_offset, row.ahead) == (10, [11, 12, 14])
        assert offsets.pending(s, "g", [Position("t", 0, o) for o in (10, 11, 13)]) == [True, False, True]
    with database.session() as s:
        offsets.claim(s, "g", [Position("t", 0, 10)])
    with database.session() as s:
        row = s.get(ConsumerOffset, ("g", "t", 0))
        assert (row.next_offset, row.ahead) == (13, [14])
    with pytest.raises(offsets.AlreadyApplied), database.session() as s:
        offsets.claim(s, "g", [Position("t", 0, 12)])


def test_a_batch_claims_in_one_pass_and_a_repeat_inside_it_is_caught(database):
    with database.session() as s:
        offsets.start(s, "g", {("t", 0): 0, ("t", 1): 5}, {})
        offsets.claim(s, "g", [Position("t", p, o) for o in range(5, 505) for p in (0, 1)])
    with database.session() as s:
        assert (s.get(ConsumerOffset, ("g", "t", 0)).next_offset, s.get(ConsumerOffset, ("g", "t", 0)).ahead) \
            == (0, list(range(5, 505)))
        assert (s.get(ConsumerOffset, ("g", "t", 1)).next_offset, s.get(ConsumerOffset, ("g", "t", 1)).ahead) \
            == (505, [])
    with pytest.raises(offsets.AlreadyApplied), database.session() as s:  # the same offset twice in one batch
        offsets.claim(s, "g", [Position("t", 0, 1), Position("t", 0, 2), Position("t", 0, 1)])
    with database.session() as s:  # and the failed claim rolled back whole
        assert s.get(ConsumerOffset, ("g", "t", 0)).next_offset == 0


def test_copied_rows_fail_as_an_insert_would(database):
    """COPY (PostgreSQL) raises SQLAlchemy's IntegrityError on a duplicate, as the INSERT it replaces did: the
    consume loop retries on that class, and would dead-letter on a driver's own."""
    from sqlalchemy.exc import IntegrityError

    from opsdraft.db import copy_rows

    row = ("log:checkout", "d" * 64, "<EMAIL_1>", None, None)
    columns = ("scope", "digest", "placeholder", "sealed", "last_seen_at")
    with database.session() as s:
        copied = copy_rows(s, "placeholders", columns, [row])
    assert copied == database.url.startswith("postgresql")
    if copied:
        with pytest.raises(IntegrityError), database.session() as s:
            copy_rows(s, "placeholders", columns, [row])


def test_a_partition_that_lost_its_log_starts_over(database):
    """An in-memory broker restarted: offsets begin at 0 again, and those messages are new ones."""
    with database.session() as s:
        offsets.start(s, "g", {("t", 0): 0}, {})
        offsets.claim(s, "g", [Position("t", 0, o) for o in range(50)])
    with database.session() as s:
        assert offsets.start(s, "g", {("t", 0): 0}, {("t", 0): 50}) == []  # a redelivery from 0: no loss
    with database.session() as s:
        assert offsets.pending(s, "g", [Position("t", 0, 0)]) == [False]
    with database.session() as s:
        assert offsets.start(s, "g", {("t", 0): 0}, {("t", 0): 7}) == [("t", 0)]
    with database.session() as s:
        assert offsets.pending(s, "g", [Position("t", 0, 0)]) == [True]


async def test_any_parse_error_dead_letters_the_message_and_the_loop_goes_on(rt):
    """RecursionError, ValueError (a 5,000-digit number), anything a parser raises: the message is dead-lettered,
    the next one applies, and nothing stops."""
    t = rt.settings.topics

    class Fragile(BatchHandler):
        def parse(self, msg):
            kind = msg.value.decode()
            if kind == "deep":
                raise RecursionError("maximum recursion depth exceeded")
            if kind == "huge":
                int("9" * 5000)
            if kind == "odd":
                raise KeyError("what")
            return kind

        def apply(self, s, parsed):
            s.add(Outbox(topic="seen", payload={"v": parsed}))

    for v in (b"deep", b"huge", b"odd", b"fine"):
        await rt.bus.send(t.logs, v)
    await _run(rt, [t.logs], "g-poison", Fragile(), lambda: len(_outbox_payloads(rt.db)) == 1)
    dead = await read_topic(rt.bus, t.dead_letters, 3)
    assert len(dead) == 3 and _outbox_payloads(rt.db) == [{"v": "fine"}]
    reasons = " | ".join(d["reason"] for d in dead)
    assert "nested too deeply" in reasons and "ValueError" in reasons and "KeyError" in reasons


async def test_a_handler_that_recurses_forever_is_dead_lettered(rt):
    t = rt.settings.topics

    def handler(s, msg):
        if msg.value == b"loop":
            raise RecursionError("maximum recursion depth exceeded")
        s.add(Outbox(topic="seen", payload={"v": msg.value.decode()}))

    await rt.bus.send(t.logs, b"loop")
    await rt.bus.send(t.logs, b"next")
    await _run(rt, [t.logs], "g-recurse", handler, lambda: len(_outbox_payloads(rt.db)) == 1)
    (dead,) = await read_topic(rt.bus, t.dead_letters, 1)
    assert "nested too deeply" in dead["reason"]


async def test_a_dead_letter_of_a_huge_message_fits_the_broker_and_says_it_was_cut(rt):
    t = rt.settings.topics
    line = json.dumps({"timestamp": "2026-11-20T14:00:00Z", "service": "x", "level": "LOUD", "message": "y" * 800_000})
    await rt.bus.send(t.logs, line.encode())
    await rt.bus.send(t.logs, {"timestamp": "2026-11-20T14:00:01Z", "service": "x", "level": "ERROR",
                               "message": "after the big one"})
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(rt, stop))
    try:
        (dead,) = await read_topic(rt.bus, t.dead_letters, 1, timeout=60)

        def done():
            with rt.db.session() as s:
                return offsets.done_count(s, t.logs)

        await until(lambda: done() == 2)
    finally:
        stop.set()
        await task
    assert dead["truncated"] is True and dead["value_bytes"] == len(line)
    assert len(json.dumps(dead)) < 1_000_000


def test_invalid_message_stays_invalid_message():
    from opsdraft.bus import _parse

    class Strict(BatchHandler):
        def parse(self, msg):
            raise InvalidMessage("missing field")

        def apply(self, s, parsed):
            raise AssertionError

    with pytest.raises(InvalidMessage, match="missing field"):
        _parse(Strict(), Message("t", 0, 0, None, b"", {}))
