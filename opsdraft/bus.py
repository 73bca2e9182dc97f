"""Kafka plumbing shared by every role: the embedded broker, producing, the transactional outbox, and a
consume loop that commits offsets only after the database transaction that applied the message commits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from opsdraft.db import Database
from opsdraft.metrics import CONSUMED, CONSUMER_LAG, DEAD_LETTERS, FAILURES, PROCESSING_SECONDS
from opsdraft.models import ConsumedMessage, utcnow

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

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.topic.encode() + b"\0" + (self.key or "").encode() + b"\0" + self.value)
        return h.hexdigest()

    def json(self) -> Any:
        try:
            return json.loads(self.value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidMessage(f"not UTF-8: {exc}") from None
        except json.JSONDecodeError as exc:
            raise InvalidMessage(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


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


def _seen(db: Database, msg: Message) -> bool:
    with db.session() as s:
        return s.scalar(select(ConsumedMessage.id).where(
            ConsumedMessage.topic == msg.topic, ConsumedMessage.digest == msg.digest)) is not None


def _apply(db: Database, msg: Message, handler: Handler, attempts: int = 3) -> bool:
    """Apply one message in one transaction; False if it was applied before."""
    for attempt in range(attempts):
        try:
            with db.session() as s:
                if s.scalar(select(ConsumedMessage.id).where(
                        ConsumedMessage.topic == msg.topic, ConsumedMessage.digest == msg.digest)):
                    return False
                handler(s, msg)
                s.add(ConsumedMessage(topic=msg.topic, digest=msg.digest, partition=msg.partition,
                                      offset=msg.offset))
            return True
        except IntegrityError:
            # Either a concurrent consumer applied this very message first (then we are done), or it wrote a
            # row ours collides with (a placeholder of the same incident, say): then try again on top of it.
            if _seen(db, msg):
                return False
            if attempt == attempts - 1:
                raise
    return False


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


def _apply_batch(db: Database, items: list[tuple[Message, Any]], handler: BatchHandler) -> Counter[str]:
    """Apply parsed messages in one transaction; returns the new ones per topic. Any error rolls back all."""
    with db.session() as s:
        digests = {m.digest for m, _ in items}
        seen = set(s.scalars(select(ConsumedMessage.digest).where(
            ConsumedMessage.topic.in_({m.topic for m, _ in items}), ConsumedMessage.digest.in_(digests))))
        new = []
        for msg, parsed in items:
            if msg.digest not in seen:  # else applied before, or earlier in this very batch
                seen.add(msg.digest)
                new.append((msg, parsed))
        handler.apply_many(s, [parsed for _, parsed in new])
        if new:  # one multi-row insert, outside the unit of work: nothing refers to these rows
            s.execute(insert(ConsumedMessage), [dict(topic=m.topic, digest=m.digest, partition=m.partition,
                                                     offset=m.offset, at=utcnow()) for m, _ in new])
        return Counter(m.topic for m, _ in new)


async def consume(bus: Bus, db: Database, topics: list[str], group: str, handler: Handler,
                  dead_letter_topic: str, redact: Redact, stop: asyncio.Event, seal: Seal | None = None,
                  parallel: int = 1) -> None:
    """Consume `topics` as `group` until `stop` is set. Offsets are committed only after the transaction that
    applied their messages committed. A BatchHandler's messages are applied a fetched batch per transaction
    (falling back to one per transaction when the batch fails); others one per transaction. Malformed messages
    go to the dead-letter topic, redacted (and, with `seal`, encrypted whole for `opsdraft dlq replay`).
    With `parallel` > 1 a plain handler takes up to that many messages of a batch at once, each in its own
    transaction; messages with the same key (and partition) still go one after another, in order."""
    consumer = bus.consumer(topics, group)
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300)
            msgs = [Message.from_record(r) for records in batch.values() for r in records]
            if not msgs:
                continue
            if isinstance(handler, BatchHandler):
                await _handle_batch(bus, db, msgs, handler, dead_letter_topic, redact, stop, seal)
            elif parallel > 1:
                await _handle_parallel(bus, db, msgs, handler, dead_letter_topic, redact, stop, seal, parallel)
            else:
                for msg in msgs:
                    await _handle_one(bus, db, msg, handler, dead_letter_topic, redact, stop, seal)
            offsets = {TopicPartition(tp.topic, tp.partition): records[-1].offset + 1 for tp, records in batch.items()}
            await consumer.commit(offsets)
            for tp, offset in offsets.items():
                # The high watermark comes with each fetch response (no extra request). Tansu gets it right;
                # its ListOffsets (end_offsets) answer is the one that is wrong.
                if (end := consumer.highwater(tp)) is not None:
                    CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(max(end - offset, 0))
    finally:
        await consumer.stop()


async def _handle_parallel(bus: Bus, db: Database, msgs: list[Message], handler: Handler, dlq: str, redact: Redact,
                           stop: asyncio.Event, seal: Seal | None, parallel: int) -> None:
    chains: dict[tuple[str, int, str | None], list[Message]] = {}
    for msg in msgs:
        chains.setdefault((msg.topic, msg.partition, msg.key), []).append(msg)
    slots = asyncio.Semaphore(parallel)

    async def run(chain: list[Message]) -> None:
        async with slots:
            for msg in chain:
                await _handle_one(bus, db, msg, handler, dlq, redact, stop, seal)

    await asyncio.gather(*(run(chain) for chain in chains.values()))


async def _handle_batch(bus: Bus, db: Database, msgs: list[Message], handler: BatchHandler, dlq: str,
                        redact: Redact, stop: asyncio.Event, seal: Seal | None) -> None:
    items, dead = [], []
    for msg in msgs:
        try:
            items.append((msg, handler.parse(msg)))
        except InvalidMessage as exc:
            dead.append((msg, str(exc)))
    delay, started = 0.5, time.perf_counter()
    while items:
        try:
            applied = await asyncio.to_thread(_apply_batch, db, items, handler)
            PROCESSING_SECONDS.labels(items[0][0].topic).observe(time.perf_counter() - started)
            for topic, n in Counter(m.topic for m, _ in items).items():
                CONSUMED.labels(topic, "applied").inc(applied[topic])
                CONSUMED.labels(topic, "duplicate").inc(n - applied[topic])
            break
        except OperationalError:
            if stop.is_set():
                raise
            FAILURES.labels(items[0][0].topic, "database").inc()
            log.warning("database unavailable applying a batch of %d; retrying in %.1fs", len(items), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
        except Exception:  # one message spoils the batch: find it by applying them one at a time
            for msg, _ in items:
                await _handle_one(bus, db, msg, handler, dlq, redact, stop, seal)
            break
    for msg, reason in dead:
        await dead_letter(bus, dlq, msg, reason, redact, seal)


async def _handle_one(bus: Bus, db: Database, msg: Message, handler: Handler, dlq: str, redact: Redact,
                      stop: asyncio.Event, seal: Seal | None, max_failures: int = 3) -> None:
    delay, failures = 0.5, 0
    while True:
        try:
            applied = await asyncio.to_thread(_apply, db, msg, handler)
            CONSUMED.labels(msg.topic, "applied" if applied else "duplicate").inc()
            return
        except InvalidMessage as exc:
            reason = str(exc)
        except OperationalError:
            # Database unavailable: commit nothing, keep this message, back off and try again.
            if stop.is_set():
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
            if failures < max_failures and not stop.is_set():
                await asyncio.sleep(delay * failures)
                continue
            reason = f"failed after {failures} attempts: {type(exc).__name__}: {exc}"
        # Not recorded as consumed: once fixed, a replay of the same bytes must apply.
        await dead_letter(bus, dlq, msg, reason, redact, seal)
        return


async def dead_letter(bus: Bus, topic: str, msg: Message, reason: str, redact: Redact,
                      seal: Seal | None = None) -> None:
    DEAD_LETTERS.labels(msg.topic).inc()
    log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
    await bus.send(topic, {
        "reason": redact(reason),
        "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset, "key": msg.key},
        "at": datetime.now(UTC).isoformat(),
        # Never a way around redaction: the original is kept only in redacted form.
        "value_redacted": redact(msg.value.decode("utf-8", errors="replace")[:100_000]),
        "value_sealed": seal(msg.value) if seal else None,
    }, key=msg.key)
