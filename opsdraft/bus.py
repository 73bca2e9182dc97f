"""Kafka plumbing shared by every role: producing, and a consume loop applying each message exactly once by
offsets stored with its effects (opsdraft/offsets.py); a message that cannot apply is dead-lettered, never fatal."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from opsdraft import jsonbody, offsets
from opsdraft.db import Database
from opsdraft.metrics import CONSUMED, CONSUMER_LAG, DEAD_LETTERS, FAILURES, PROCESSING_SECONDS
from opsdraft.offsets import Position

log = logging.getLogger(__name__)


def _quiet_producer_log() -> None:
    """aiokafka logs every produced value at DEBUG, and an approved ticket reply is produced with the customer's
    name restored: keep that logger at INFO or above so the name never reaches a log."""
    producer_log = logging.getLogger("aiokafka.producer.producer")
    if producer_log.level < logging.INFO:
        producer_log.setLevel(logging.INFO)


class InvalidMessage(Exception):
    """The message cannot be applied as it is: it goes to the dead-letter topic with this reason."""


def encode(payload: Any) -> bytes:
    return json.dumps(payload, default=str, separators=(",", ":")).encode()


class Bus:
    """One producer per process; consumers are made per role."""

    def __init__(self, bootstrap: str):
        _quiet_producer_log()
        self.bootstrap = bootstrap
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)

    async def start(self) -> Bus:
        await self.producer.start()
        return self

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, payload: Any, key: str | None = None,
                   headers: dict[str, str] | None = None) -> None:
        value = payload if isinstance(payload, bytes) else encode(payload)
        await self.producer.send_and_wait(
            topic, value, key=key.encode() if key else None,
            headers=[(k, v.encode()) for k, v in (headers or {}).items()],
        )

    def consumer(self, topics: list[str], group: str) -> AIOKafkaConsumer:
        # Tansu gets "latest" wrong, and a new group must see what was produced before it joined anyway.
        return AIOKafkaConsumer(
            *topics, bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
            max_poll_records=500, fetch_max_wait_ms=100,  # big batches when busy, low latency when not
        )


async def read_topic(bus: Bus, topic: str, at_least: int, timeout: float = 30.0) -> list[Any]:
    """Read a topic from the start with a throwaway group until `at_least` JSON messages arrived (or timeout)."""
    consumer = bus.consumer([topic], f"opsdraft-reader-{topic}-{time.time_ns()}")
    await consumer.start()
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < at_least and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out += [json.loads(r.value) for r in records]
    finally:
        await consumer.stop()
    return out


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]

    @classmethod
    def from_record(cls, r: ConsumerRecord) -> Message:
        return cls(r.topic, r.partition, r.offset, r.key.decode(errors="replace") if r.key else None,
                   r.value or b"", {k: v.decode(errors="replace") for k, v in (r.headers or [])})

    def json(self) -> Any:
        # The webhook receivers parse with this same function (opsdraft/jsonbody.py): what got 202 applies.
        try:
            return jsonbody.loads(self.value)
        except jsonbody.JSONBodyError as exc:
            raise InvalidMessage(str(exc)) from None


Handler = Callable[[Session, Message], None]
Redact = Callable[[str], str]
Seal = Callable[[bytes], str]  # encrypts a message so only holders of the key can read (and replay) it


def typed_handler(routes: dict[str, tuple[type[BaseModel], Callable[[Session, Any], None]]]) -> Handler:
    """One handler for several topics: `{topic: (Model, handler)}`. Each message is parsed into its topic's model
    (a message that does not fit is invalid: dead-lettered with pydantic's reason) and handed to its handler."""

    def handle(s: Session, msg: Message) -> None:
        model, handler = routes[msg.topic]
        try:
            parsed = model.model_validate(msg.json())
        except ValidationError as exc:
            raise InvalidMessage(f"invalid {model.__name__}: {exc}") from None
        handler(s, parsed)

    return handle


def _apply(db: Database, group: str, msg: Message, handler: Handler, attempts: int = 3) -> bool:
    """Apply one message and move the group's offset past it in one transaction; False if it was applied before."""
    pos = [Position(msg.topic, msg.partition, msg.offset)]
    for attempt in range(attempts):
        try:
            with db.session() as s:
                if not offsets.pending(s, group, pos)[0]:
                    return False
                handler(s, msg)
                offsets.claim(s, group, pos)
            return True
        except offsets.AlreadyApplied:
            return False  # another member of the group applied it during a rebalance; ours rolled back
        except IntegrityError:
            # A concurrent transaction wrote a row ours collides with (a placeholder of the same incident, say):
            # try again on top of it.
            if attempt == attempts - 1:
                raise
    return False


def _mark_done(db: Database, group: str, msg: Message) -> None:
    """A dead-lettered message is done too: moving past it keeps a restart from dead-lettering it again."""
    try:
        with db.session() as s:
            offsets.claim(s, group, [Position(msg.topic, msg.partition, msg.offset)])
    except offsets.AlreadyApplied:
        pass


class BatchHandler(ABC):
    """A handler that can also apply many messages in one transaction: `parse` runs outside any
    transaction (and may raise InvalidMessage), `apply` inside it. Calling it handles one message.
    `apply_many` may apply a batch faster than one `apply` after another, with the same outcome."""

    @abstractmethod
    def parse(self, msg: Message) -> Any: ...

    @abstractmethod
    def apply(self, s: Session, parsed: Any) -> None: ...

    def apply_many(self, s: Session, parsed: list[Any]) -> None:
        for p in parsed:
            self.apply(s, p)

    def __call__(self, s: Session, msg: Message) -> None:
        self.apply_many(s, [self.parse(msg)])


def _apply_batch(db: Database, group: str, items: list[tuple[Message, Any]], handler: BatchHandler) -> Counter[str]:
    """Apply parsed messages in one transaction with the group's new offsets; returns the new ones per topic.
    Any error rolls back all."""
    with db.session() as s:
        todo = offsets.pending(s, group, (Position(m.topic, m.partition, m.offset) for m, _ in items))
        new = [item for item, pending in zip(items, todo, strict=True) if pending]
        handler.apply_many(s, [parsed for _, parsed in new])
        offsets.claim(s, group, [Position(m.topic, m.partition, m.offset) for m, _ in new])
        return Counter(m.topic for m, _ in new)


def _start_partitions(db: Database, group: str, msgs: list[Message], ends: dict[tuple[str, int], int | None]) -> None:
    firsts: dict[tuple[str, int], int] = {}
    for m in msgs:
        firsts.setdefault((m.topic, m.partition), m.offset)
    for _ in range(3):
        try:
            with db.session() as s:
                restarted = offsets.start(s, group, firsts, ends)
            for topic, partition in restarted:
                log.warning("%s[%d] ends below %s's stored offset: the broker lost its log (an in-memory broker "
                            "restarted?); taking its messages as new", topic, partition, group)
            return
        except IntegrityError:  # another member made the row first: look again
            continue


class _SeekToStored(ConsumerRebalanceListener):
    """On assignment, go on from the offsets stored with the effects, not from the broker's commits (which come
    after the database commit and may lag behind it, or be lost with an in-memory broker)."""

    def __init__(self, db: Database, group: str):
        self.db, self.group, self.consumer = db, group, None
        self.started: set[tuple[str, int]] = set()

    async def on_partitions_revoked(self, revoked) -> None:
        self.started.clear()

    async def on_partitions_assigned(self, assigned) -> None:
        def read():
            with self.db.session() as s:
                return offsets.positions(s, self.group, assigned)

        for tp, offset in (await asyncio.to_thread(read)).items():
            self.consumer.seek(tp, offset)


@dataclass
class _Loop:
    """What every step of one consume loop needs."""

    bus: Bus
    db: Database
    group: str
    handler: Handler
    dlq: str
    redact: Redact
    stop: asyncio.Event
    seal: Seal | None


async def consume(bus: Bus, db: Database, topics: list[str], group: str, handler: Handler,
                  dead_letter_topic: str, redact: Redact, stop: asyncio.Event, seal: Seal | None = None,
                  parallel: int = 1, caught_up: asyncio.Event | None = None) -> None:
    """Consume `topics` as `group` until `stop` is set, exactly once by offsets (opsdraft/offsets.py): each
    transaction that applies messages also moves the group's stored offsets past them, and on assignment the
    consumer seeks to those. A BatchHandler's messages are applied a fetched batch per transaction (falling back to
    one per transaction when the batch fails); others one per transaction. A message that cannot be applied goes to
    the dead-letter topic, redacted (and, with `seal`, encrypted whole for `opsdraft dlq replay`): no single message
    stops the loop. With `parallel` > 1 a plain handler takes up to that many messages of a batch at once, each in
    its own transaction; messages with the same key (and partition) still go one after another, in order.
    Broker commits still follow each batch, for lag tools; the stored offsets are what counts. `caught_up`, if
    given, is set while the group has read everything there is (an empty fetch, or a batch that reached each of its
    partitions' high watermark) and cleared while a backlog remains."""
    loop = _Loop(bus, db, group, handler, dead_letter_topic, redact, stop, seal)
    consumer = bus.consumer([], group)
    listener = _SeekToStored(db, group)
    listener.consumer = consumer
    consumer.subscribe(topics, listener=listener)
    await consumer.start()
    committing: asyncio.Task | None = None
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300)
            msgs = [Message.from_record(r) for records in batch.values() for r in records]
            if not msgs:
                if caught_up is not None:
                    caught_up.set()
                continue
            fresh = [m for m in msgs if (m.topic, m.partition) not in listener.started]
            if fresh:
                ends = {(m.topic, m.partition): consumer.highwater(TopicPartition(m.topic, m.partition)) for m in fresh}
                await asyncio.to_thread(_start_partitions, db, group, fresh, ends)
                listener.started.update((m.topic, m.partition) for m in fresh)
            if isinstance(handler, BatchHandler):
                await _handle_batch(loop, msgs, handler)
            elif parallel > 1:
                await _handle_parallel(loop, msgs, parallel)
            else:
                for msg in msgs:
                    await _handle_one(loop, msg)
            commits = {TopicPartition(tp.topic, tp.partition): records[-1].offset + 1 for tp, records in batch.items()}
            if committing is not None:
                await committing
            # Not waited for: the next batch applies meanwhile (a round trip per batch was ~3% of ingest).
            committing = asyncio.create_task(_commit_to_broker(consumer, commits))
            behind = False
            for tp, offset in commits.items():
                # The high watermark comes with each fetch response (no extra request). Tansu gets it right;
                # its ListOffsets (end_offsets) answer is the one that is wrong.
                if (end := consumer.highwater(tp)) is not None:
                    CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(max(end - offset, 0))
                    behind = behind or end > offset
            if caught_up is not None and behind:
                caught_up.clear()
            elif caught_up is not None:
                caught_up.set()
    finally:
        if committing is not None:
            await committing
        await consumer.stop()


async def _commit_to_broker(consumer: AIOKafkaConsumer, commits: dict[TopicPartition, int]) -> None:
    try:
        await consumer.commit(commits)
    except Exception as exc:  # a rebalance under way: harmless, the database holds the real offsets
        log.info("broker commit skipped: %r", exc)


async def _handle_parallel(loop: _Loop, msgs: list[Message], parallel: int) -> None:
    chains: dict[tuple[str, int, str | None], list[Message]] = {}
    for msg in msgs:
        chains.setdefault((msg.topic, msg.partition, msg.key), []).append(msg)
    slots = asyncio.Semaphore(parallel)

    async def run(chain: list[Message]) -> None:
        async with slots:
            for msg in chain:
                await _handle_one(loop, msg)

    await asyncio.gather(*(run(chain) for chain in chains.values()))


def _parse(handler: BatchHandler, msg: Message) -> Any:
    """Any parse failure is the message's fault, whatever its class (deep nesting, huge numbers, bad text)."""
    try:
        return handler.parse(msg)
    except InvalidMessage:
        raise
    except RecursionError:
        raise InvalidMessage("nested too deeply to parse") from None
    except Exception as exc:
        raise InvalidMessage(f"cannot be parsed: {type(exc).__name__}: {str(exc)[:500]}") from None


async def _handle_batch(loop: _Loop, msgs: list[Message], handler: BatchHandler) -> None:
    items, dead = [], []
    for msg in msgs:
        try:
            items.append((msg, _parse(handler, msg)))
        except InvalidMessage as exc:
            dead.append((msg, str(exc)))
    delay, started = 0.5, time.perf_counter()
    while items:
        try:
            applied = await asyncio.to_thread(_apply_batch, loop.db, loop.group, items, handler)
            PROCESSING_SECONDS.labels(items[0][0].topic).observe(time.perf_counter() - started)
            for topic, n in Counter(m.topic for m, _ in items).items():
                CONSUMED.labels(topic, "applied").inc(applied[topic])
                CONSUMED.labels(topic, "duplicate").inc(n - applied[topic])
            break
        except OperationalError as exc:
            if loop.stop.is_set():
                raise
            FAILURES.labels(items[0][0].topic, "database").inc()
            log.warning("database unavailable applying a batch of %d (%s); retrying in %.1fs", len(items),
                        (str(exc.orig or exc).splitlines() or [""])[0][:300], delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
        except Exception as exc:  # one message spoils the batch (or a rebalance overlap): apply them one at a time
            FAILURES.labels(items[0][0].topic, "batch").inc()
            log.warning("a batch of %d failed (%r); applying its messages one at a time", len(items), exc)
            for msg, _ in items:
                await _handle_one(loop, msg)
            break
    for msg, reason in dead:
        await _dead_letter_and_move_on(loop, msg, reason)


async def _handle_one(loop: _Loop, msg: Message, max_failures: int = 3) -> None:
    delay, failures = 0.5, 0
    while True:
        try:
            applied = await asyncio.to_thread(_apply, loop.db, loop.group, msg, loop.handler)
            CONSUMED.labels(msg.topic, "applied" if applied else "duplicate").inc()
            return
        except InvalidMessage as exc:
            reason = str(exc)
        except RecursionError:
            reason = "nested too deeply to parse"
        except OperationalError:
            # Database unavailable: commit nothing, keep this message, back off and try again.
            if loop.stop.is_set():
                raise
            FAILURES.labels(msg.topic, "database").inc()
            log.warning("database unavailable applying %s[%d]@%d; retrying in %.1fs",
                        msg.topic, msg.partition, msg.offset, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
            continue
        except Exception as exc:  # e.g. Slack refused a post: retry a little, then park it where it can be seen
            failures += 1
            FAILURES.labels(msg.topic, type(exc).__name__).inc()
            log.warning("applying %s[%d]@%d failed (%d/%d): %r", msg.topic, msg.partition, msg.offset,
                        failures, max_failures, exc)
            if failures < max_failures and not loop.stop.is_set():
                await asyncio.sleep(delay * failures)
                continue
            reason = f"failed after {failures} attempts: {type(exc).__name__}: {str(exc)[:2000]}"
        await _dead_letter_and_move_on(loop, msg, reason)
        return


async def _dead_letter_and_move_on(loop: _Loop, msg: Message, reason: str) -> None:
    """The dead letter first, then the offset: a crash between the two sends the same dead letter again (its
    `source` names the message, so a reader can tell), never none. A replay (`opsdraft dlq replay`) produces the
    original again at a new offset, where it applies like any new message."""
    delay = 0.5
    while True:
        try:
            await dead_letter(loop.bus, loop.dlq, msg, reason, loop.redact, loop.seal)
            await asyncio.to_thread(_mark_done, loop.db, loop.group, msg)
            return
        except OperationalError:
            if loop.stop.is_set():
                raise
            FAILURES.labels(msg.topic, "database").inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


# The broker refuses messages over ~1 MiB (Tansu's and Kafka's default): a dead letter, which carries the redacted
# text and the sealed original (about 4/3 larger), keeps both under it by truncating, and says so.
DEAD_LETTER_KEEP_BYTES = 300_000


async def dead_letter(bus: Bus, topic: str, msg: Message, reason: str, redact: Redact,
                      seal: Seal | None = None) -> None:
    DEAD_LETTERS.labels(msg.topic).inc()
    log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, redact(reason[:2000]))
    kept = msg.value[:DEAD_LETTER_KEEP_BYTES]
    await bus.send(topic, {
        "reason": redact(reason[:2000]),
        "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset, "key": msg.key},
        "at": datetime.now(UTC).isoformat(),
        # Never a way around redaction: the original is kept only in redacted form.
        "value_redacted": redact(kept.decode("utf-8", errors="replace")[:100_000]),
        "value_sealed": seal(kept) if seal else None,
        "value_bytes": len(msg.value),
        "truncated": len(kept) < len(msg.value),  # then the sealed original is its first DEAD_LETTER_KEEP_BYTES
    }, key=msg.key)
