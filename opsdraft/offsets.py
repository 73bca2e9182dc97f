"""Exactly-once by offsets: each consumer group's position per (topic, partition) lives in the database and is
moved in the same transaction as the effects of the messages it covers. On assignment the consumer seeks to it,
so a message is applied at most once however often the broker redelivers it, and two byte-identical messages at
different offsets are two messages. State is one row per partition, not one per message.

Messages of one partition may complete out of order (the summarizer makes drafts side by side, a dead letter is
sent after the rest of its batch): a row keeps `next_offset` (everything below is done) and `ahead`, the few
offsets above it already done, folded into `next_offset` as the gap closes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdraft.models import ConsumerOffset, utcnow

# Rows a migration carried over from the per-message digest table, which knew topics but not groups: a group
# with no row of its own starts from there.
LEGACY_GROUP = ""


class AlreadyApplied(Exception):
    """Another consumer of the same group applied one of these messages first (a rebalance overlap): roll back."""


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


def _rows(s: Session, group: str, tps: set[tuple[str, int]], lock: bool) -> dict[tuple[str, int], ConsumerOffset]:
    if not tps:
        return {}
    q = select(ConsumerOffset).where(ConsumerOffset.group_id == group,
                                     ConsumerOffset.topic.in_({t for t, _ in tps}))
    if lock:
        q = q.with_for_update()
    return {(r.topic, r.partition): r for r in s.scalars(q) if (r.topic, r.partition) in tps}


def pending(s: Session, group: str, positions: Iterable[Position]) -> list[bool]:
    """For each position, whether the group has still to apply it (read without locking)."""
    positions = list(positions)
    rows = _rows(s, group, {(p.topic, p.partition) for p in positions}, lock=False)
    done = {tp: (row.next_offset, set(row.ahead)) for tp, row in rows.items()}  # a set: batches are 500 long
    out = []
    for p in positions:
        d = done.get((p.topic, p.partition))
        out.append(d is None or not (p.offset < d[0] or p.offset in d[1]))
    return out


def claim(s: Session, group: str, positions: Iterable[Position]) -> None:
    """Mark positions applied, in the caller's transaction (which holds their effects). Raises AlreadyApplied if
    one was applied meanwhile by another transaction: the caller rolls back, and nothing is doubled. Called at
    the end of the transaction, so the row lock (PostgreSQL) is held only for its commit."""
    by_tp: dict[tuple[str, int], list[int]] = {}
    for p in positions:
        by_tp.setdefault((p.topic, p.partition), []).append(p.offset)
    rows = _rows(s, group, set(by_tp), lock=True)
    for (topic, partition), offs in by_tp.items():
        row = rows.get((topic, partition))
        if row is None:  # `start` makes them before a batch; this is a safety net
            row = ConsumerOffset(group_id=group, topic=topic, partition=partition, next_offset=min(offs), ahead=[])
            s.add(row)
        ahead, nxt = set(row.ahead), row.next_offset
        for offset in offs:
            if offset < nxt or offset in ahead:
                raise AlreadyApplied(f"{topic}[{partition}]@{offset}")
            ahead.add(offset)
        while nxt in ahead:
            nxt += 1
        row.next_offset, row.ahead, row.updated_at = nxt, sorted(a for a in ahead if a >= nxt), utcnow()


def start(s: Session, group: str, firsts: dict[tuple[str, int], int],
          ends: dict[tuple[str, int], int | None]) -> list[tuple[str, int]]:
    """Called with the first offset fetched from each partition since assignment and the partition's end (high
    watermark). A partition with no row gets one starting at that first offset (the broker's position: its
    committed offset, or the earliest; fetches are in order per partition). A partition whose end lies below its
    stored offset lost its log (an in-memory broker restarted; a topic re-created): its messages are new ones, so
    the row starts over. Returns the partitions started over."""
    have = _rows(s, group, set(firsts), lock=True)
    restarted = []
    for (topic, partition), offset in firsts.items():
        row, end = have.get((topic, partition)), ends.get((topic, partition))
        if row is None:
            s.add(ConsumerOffset(group_id=group, topic=topic, partition=partition, next_offset=offset, ahead=[]))
        elif end is not None and end < row.next_offset:
            row.next_offset, row.ahead, row.updated_at = offset, [], utcnow()
            restarted.append((topic, partition))
    return restarted


def positions(s: Session, group: str, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """Where the group goes on from, per partition it has a row for (its own, else one carried over)."""
    tps = list(tps)
    out: dict[TopicPartition, int] = {}
    for g in (group, LEGACY_GROUP):
        rows = _rows(s, g, {(tp.topic, tp.partition) for tp in tps}, lock=False)
        for tp in tps:
            if tp not in out and (row := rows.get((tp.topic, tp.partition))) is not None:
                out[tp] = row.next_offset
    return out


def done_count(s: Session, topic: str | None = None, group: str | None = None) -> int:
    """How many messages the groups have done (applied or dead-lettered) on partitions read from offset 0: what
    tests and benchmarks wait on."""
    q = select(ConsumerOffset).where(ConsumerOffset.group_id != LEGACY_GROUP)
    if topic is not None:
        q = q.where(ConsumerOffset.topic == topic)
    if group is not None:
        q = q.where(ConsumerOffset.group_id == group)
    return sum(r.next_offset + len(r.ahead) for r in s.scalars(q))
