"""Webhook receipts, for the embedded broker: a webhook's 202 survives a kill -9 of `opsdraft run`.

The embedded Tansu broker keeps its topics in memory, so a message that a webhook produced and answered 202 for
would be lost if the process died before the consumers applied it. On the embedded broker (no
OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS) the receivers therefore record each message they produced (topic, partition and
offset from the broker's acknowledgement; the body encrypted, as dead letters are) before they answer 202. Then:

- the consumers role deletes the receipts of messages its group has applied, every few seconds (forget_applied);
- at start, before the stored consumer positions of the lost log are forgotten, the receipts of messages never
  applied are kept and the others deleted (keep_unapplied, run by opsdraft/reconcile.py); once the fresh broker is
  up, those are produced again in the order they came, and recorded at their new offsets (produce_again).

The consumers apply a message and move their stored offset past it in one transaction, so a receipt is either
applied (never produced again) or not (produced again, once): nothing lost, nothing doubled. A kill after the
broker took a message but before its receipt was written leaves no receipt: the sender got no 202 then, and
senders retry what was not answered 2xx."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from opsdraft import offsets
from opsdraft.bus import Bus
from opsdraft.db import Database
from opsdraft.models import ConsumerOffset, WebhookReceipt
from opsdraft.periodic import every
from opsdraft.settings import Settings

Recorder = Callable[[str, str | None, dict[str, str], list[tuple[int, int, bytes]]], None]


def consumers_group(settings: Settings) -> str:
    """The consumer group of the consumers role (consumers/worker.py), whose stored offsets say what is applied."""
    return f"{settings.consumer_group}-consumers"


def recorder(db: Database, settings: Settings) -> Recorder:
    """For the webhook receivers: record(topic, key, headers, [(partition, offset, body)]) in one transaction."""
    from opsdraft.privacy import sealer

    seal = sealer(settings)

    def record(topic: str, key: str | None, headers: dict[str, str], sent: list[tuple[int, int, bytes]]) -> None:
        with db.session() as s:
            s.add_all([WebhookReceipt(topic=topic, partition=partition, offset=offset, key=key, headers=headers,
                                      sealed=seal(body)) for partition, offset, body in sent])

    return record


def forget_applied(s: Session, group: str) -> int:
    """Delete the receipts of messages the group has applied (below its stored offset of their partition)."""
    if not s.scalar(select(exists().where(WebhookReceipt.partition.is_not(None)))):
        return 0
    gone = 0
    for row in s.scalars(select(ConsumerOffset).where(ConsumerOffset.group_id == group)):
        gone += s.execute(delete(WebhookReceipt).where(
            WebhookReceipt.topic == row.topic, WebhookReceipt.partition == row.partition,
            WebhookReceipt.offset < row.next_offset)).rowcount
    return gone


def keep_unapplied(s: Session, group: str) -> int:
    """At start, with the broker's log gone and the group's stored offsets not yet forgotten: delete the receipts
    of what was applied and mark the others to be produced again. Returns how many will be."""
    receipts = list(s.scalars(select(WebhookReceipt).where(WebhookReceipt.partition.is_not(None))))
    todo = offsets.pending(s, group, [offsets.Position(r.topic, r.partition, r.offset) for r in receipts])
    applied = [r.id for r, waiting in zip(receipts, todo, strict=True) if not waiting]
    for i in range(0, len(applied), 500):
        s.execute(delete(WebhookReceipt).where(WebhookReceipt.id.in_(applied[i:i + 500])))
    s.execute(update(WebhookReceipt).where(WebhookReceipt.partition.is_not(None)).values(partition=None, offset=None))
    return s.scalar(select(func.count(WebhookReceipt.id))) or 0


async def produce_again(db: Database, bus: Bus, settings: Settings, chunk: int = 500) -> int:
    """Produce the receipts marked by keep_unapplied, in the order they came, and record where they went now."""
    from opsdraft.privacy import unseal

    done = 0
    while True:
        rows = await asyncio.to_thread(_waiting, db, chunk)
        if not rows:
            return done
        futures = [await bus.producer.send(topic, unseal(settings, sealed), key=key.encode() if key else None,
                                           headers=[(k, v.encode()) for k, v in headers.items()])
                   for _, topic, key, headers, sealed in rows]
        sent = await asyncio.gather(*futures)
        await asyncio.to_thread(_moved, db, [(row[0], meta.partition, meta.offset) for row, meta in
                                             zip(rows, sent, strict=True)])
        done += len(rows)


def _waiting(db: Database, chunk: int) -> list[tuple[int, str, str | None, dict, str]]:
    with db.session() as s:
        return [(r.id, r.topic, r.key, r.headers, r.sealed) for r in s.scalars(select(WebhookReceipt).where(
            WebhookReceipt.partition.is_(None)).order_by(WebhookReceipt.id).limit(chunk))]


def _moved(db: Database, where: list[tuple[int, int, int]]) -> None:
    with db.session() as s:  # an ORM bulk update by primary key: one executemany
        s.execute(update(WebhookReceipt), [dict(id=i, partition=p, offset=o) for i, p, o in where])


async def forget_applied_loop(db: Database, settings: Settings, stop: asyncio.Event, seconds: float = 5.0) -> None:
    """The consumers role's timer for forget_applied: receipts live a few seconds past their message's apply."""
    group = consumers_group(settings)

    def forget() -> None:
        with db.session() as s:
            forget_applied(s, group)

    await every(seconds, stop, lambda: asyncio.to_thread(forget), "deleting applied webhook receipts")
