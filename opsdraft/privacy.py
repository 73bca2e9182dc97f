"""Redaction within a scope (one incident or one ticket): placeholders stay the same across its records."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from opsdraft.db import copy_rows
from opsdraft.models import Placeholder, PlaceholderCounter, UTCDateTime, utcnow
from opsdraft.settings import Settings
from redaction import PlaceholderMap, RedactingLogFilter, Redactor, Sealer, SourcePolicy, build_redactor, restore
from redaction.engine import ENTITIES
from redaction.placeholders import PLACEHOLDER_PATTERN
from redaction.structures import redact_values


@lru_cache(maxsize=4)
def _redactor(mode: str, allow: tuple[str, ...], deny: tuple[str, ...],
              sources: tuple[tuple[str, SourcePolicy], ...]) -> Redactor:
    return build_redactor(mode, allow_list=list(allow), deny=list(deny), sources=dict(sources))


def source_policies(settings: Settings) -> dict[str, SourcePolicy]:
    """OPSDRAFT_REDACTION_ENTITIES narrows what is redacted per source; NER stays off for logs unless asked."""
    out = {}
    for source in ("logs", "alerts", "tickets"):
        entities = frozenset(settings.redaction_entities.get(source, ENTITIES))
        out[source] = SourcePolicy(entities, ner=source != "logs" or settings.redaction_ner_logs)
    return out


def get_redactor(settings: Settings) -> Redactor:
    return _redactor(settings.redaction_mode, tuple(settings.redaction_allow), tuple(settings.redaction_deny),
                     tuple(sorted(source_policies(settings).items())))


def install_log_redaction(settings: Settings) -> None:
    """Redact every log record on every handler of the root logger: logs never carry PII or secrets."""
    import logging

    log_filter = RedactingLogFilter(get_redactor(settings))
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)


# A placeholder's last_seen_at moves only when it is this much behind: at most one UPDATE per placeholder per hour
# of use, not one per line that uses it.
SEEN_GRANULARITY = timedelta(hours=1)


class ScopedRedactor:
    """Loads a scope's placeholder map, redacts with it, and stores new placeholders in the same transaction.

    Placeholders made or used are stamped `seen_at` (by default processing time; log ingest sets the lines' own
    time), which retention reads.

    With `seal=True` the originals of new placeholders are also kept, Fernet-encrypted (see `sealed`), so an
    approved reply can get the customer's name back at publish time (restore_for_publish); nothing else may
    decrypt them.
    """

    def __init__(self, session: Session, redactor: Redactor, key: bytes, scope: str, source: str | None = None,
                 seal: bool = False):
        self.session, self.redactor, self.scope, self.source = session, redactor, scope, source
        # Looked up value by value: a scope's stored placeholders are never all loaded.
        self.map = PlaceholderMap(key, sealer=Sealer(key) if seal else None, lookup=self._stored,
                                  last_number=self._last_number)
        self._saved: set[str] = set()
        self._stored_counters: dict[str, int] | None = None
        self.seen_at: datetime | None = None
        self._last_seen: dict[str, datetime | None] = {}  # digest -> its stored last_seen_at, as far as known

    def seen(self, at: datetime) -> None:
        """The time of the records about to be redacted (the latest, for a batch)."""
        self.seen_at = max(at, self.seen_at) if self.seen_at else at

    def _stored(self, digests: list[str]) -> dict[str, str]:
        # New placeholders are inserted as they are made (_flush), so another ScopedRedactor of this scope in the
        # same transaction sees them here.
        return _learn_stored([self], {self.scope: digests})[self.scope]

    def _last_number(self, entity_type: str) -> int:
        # One row's read (migration 0011 made a row for every scope and type stored before counters existed).
        # Counters, like placeholders, are written as they move (_flush), so another ScopedRedactor of this scope
        # in the same transaction reads the number this one reached.
        _read_counters([self])
        return self._stored_counters.get(entity_type, 0)

    def text(self, value: str, source: str | None = None) -> str:
        """`source` (logs|alerts|tickets) overrides the scope's: an incident scope holds both alerts and logs."""
        out = self.redactor.redact(value, self.map, source or self.source)
        self._flush()
        return out

    def texts(self, values: list[str], source: str | None = None) -> list[str]:
        """Many texts at once: one pass of the redactor and one look-up of the scope's stored placeholders."""
        out = self.redactor.redact_many(values, self.map, source or self.source)
        self._flush()
        return out

    def value(self, value: Any, source: str | None = None) -> Any:
        out = self.redactor.redact_value(value, self.map, source or self.source)
        self._flush()
        return out

    @property
    def sealed(self) -> dict[str, str]:
        """placeholder -> Fernet token of its original, for the placeholders this scope created so far.
        Persist these (never the originals) where the publish step can read them."""
        return {self.map.entries[d]: token for d, token in self.map.new_sealed.items()}

    def values(self, values: list[Any], source: str | None = None) -> list[Any]:
        """Many structures (a batch's log attributes) at once: their strings in one pass of the redactor."""
        out = redact_values(self.redactor, values, self.map, source or self.source)
        self._flush()
        return out

    def _flush(self) -> None:
        write_new_placeholders([self])

    def _new_rows(self) -> list[dict]:
        """Rows for the placeholders made since the last write (marked written), and moves last_seen_at of
        stored ones used now that are behind (at most once an hour each)."""
        seen = self.seen_at or utcnow()
        behind = [d for d in self.map.take_used() if d in self._last_seen and (
            self._last_seen[d] is None or self._last_seen[d] < seen - SEEN_GRANULARITY)]
        if behind:
            self._touch(sorted(behind), seen)
        if self.map.new_count == len(self._saved):
            return []
        sealed = self.map.new_sealed
        rows = [dict(scope=self.scope, digest=digest, placeholder=placeholder, sealed=sealed.get(digest),
                     last_seen_at=seen)
                for digest, placeholder in self.map.new_entries.items() if digest not in self._saved]
        self._saved.update(row["digest"] for row in rows)
        self._last_seen.update((row["digest"], seen) for row in rows)
        return rows

    def _touch(self, digests: list[str], seen: datetime) -> None:
        # Sorted, so two transactions touching the same rows lock them in the same order (no deadlock on PostgreSQL).
        table = Placeholder.__table__
        self._last_seen.update((d, seen) for d in digests)
        for i in range(0, len(digests), 500):
            self.session.execute(update(table).where(
                table.c.scope == self.scope, table.c.digest.in_(digests[i:i + 500]),
                table.c.last_seen_at.is_(None) | (table.c.last_seen_at < seen)).values(last_seen_at=seen))


def texts_in_scopes(work: list[tuple[ScopedRedactor, list[str]]], source: str | None = None) -> list[list[str]]:
    """Texts of several scopes of one session at once (an ingest batch holds a scope per service and incident):
    one redactor pass, one look-up of all their stored placeholders, one write of the new ones. The same output
    as each scope's texts()."""
    if not work:
        return []
    by_map = {id(red.map): red for red, _ in work}
    flat = work[0][0].redactor.redact_many([t for _, texts in work for t in texts],
                                           [red.map for red, texts in work for _ in texts], source,
                                           prefetch=lambda wanted: _look_up_scopes(by_map, wanted))
    write_new_placeholders([red for red, _ in work])
    out, at = [], 0
    for _, texts in work:
        out.append(flat[at:at + len(texts)])
        at += len(texts)
    return out


def _look_up_scopes(by_map: dict[int, ScopedRedactor], wanted: list[tuple[PlaceholderMap, list]]) -> None:
    """What the maps of several scopes ask the store, in one query per 500 digests (not one per scope)."""
    todo = {id(pmap): pmap.unknown(values) for pmap, values in wanted}
    reds = [by_map[key] for key, digests in todo.items() if digests]
    if not reds:
        return
    _read_counters(list(by_map.values()))  # new placeholders are likely: their counters, one query too
    found = _learn_stored(reds, {red.scope: todo[id(red.map)] for red in reds})
    for red in reds:
        red.map.learn(todo[id(red.map)], found[red.scope])


def _learn_stored(reds: list[ScopedRedactor], asks: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """scope -> {digest: placeholder} of what is stored of the digests asked per scope; each redactor also learns
    its placeholders' last_seen_at. One (scope = ? AND digest IN (...)) per scope, OR-ed: each is a probe of the
    (scope, digest) index. The table's columns, not the ORM class's: a Core query does not flush the session's
    pending objects first."""
    table, by_scope = Placeholder.__table__, {red.scope: red for red in reds}
    found: dict[str, dict[str, str]] = {scope: {} for scope in asks}
    pairs = sorted((digest, scope) for scope, digests in asks.items() for digest in set(digests))
    for i in range(0, len(pairs), 500):
        chunk: dict[str, list[str]] = {}
        for digest, scope in pairs[i:i + 500]:
            chunk.setdefault(scope, []).append(digest)
        rows = reds[0].session.execute(select(table.c.scope, table.c.digest, table.c.placeholder,
                                              table.c.last_seen_at).where(or_(*(
            (table.c.scope == scope) & table.c.digest.in_(digests) for scope, digests in chunk.items()))))
        for scope, digest, placeholder, last_seen in rows:
            found[scope][digest] = placeholder
            by_scope[scope]._last_seen[digest] = last_seen
    return found


def _read_counters(reds: list[ScopedRedactor]) -> None:
    """The stored counters of the scopes that have not read theirs yet, in one query."""
    unread = {red.scope: red for red in reds if red._stored_counters is None}
    if not unread:
        return
    for red in unread.values():
        red._stored_counters = {}
    table = PlaceholderCounter.__table__
    for scope, entity_type, last in reds[0].session.execute(select(table.c.scope, table.c.entity_type, table.c.last)
                                                            .where(table.c.scope.in_(sorted(unread)))):
        unread[scope]._stored_counters[entity_type] = last


_PLACEHOLDER_COLUMNS = ("scope", "digest", "placeholder", "sealed", "last_seen_at")


def write_new_placeholders(reds: list[ScopedRedactor]) -> None:
    """The placeholders these scopes made, in one INSERT, and their counters in one upsert: written at once (not
    ORM objects left for the next autoflush), in key order (concurrent writers lock rows in the same order)."""
    rows = sorted((row for red in reds for row in red._new_rows()), key=lambda r: (r["scope"], r["digest"]))
    if not rows:
        return
    session = reds[0].session
    at = UTCDateTime().process_bind_param
    if not copy_rows(session, "placeholders", _PLACEHOLDER_COLUMNS, (
            (r["scope"], r["digest"], r["placeholder"], r["sealed"], at(r["last_seen_at"], None)) for r in rows)):
        session.execute(insert(Placeholder.__table__), rows)
    last: dict[tuple[str, str], int] = {}
    for row in rows:
        m = PLACEHOLDER_PATTERN.fullmatch(row["placeholder"])
        if m:
            last[(row["scope"], m[1])] = max(last.get((row["scope"], m[1]), 0), int(m[2]))
    session.execute(_raise_counters(session, sorted(last.items())))


def _raise_counters(session: Session, counters: list[tuple[tuple[str, str], int]]):
    """INSERT each ((scope, entity type), n) counter, or raise it to n if it is lower: an upsert, so that two
    writers making a scope's first placeholder of a type (the bot and the consumers) do not collide."""
    from sqlalchemy.dialects import postgresql, sqlite

    table = PlaceholderCounter.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    stmt = (postgresql.insert if postgres else sqlite.insert)(table).values(
        [dict(scope=scope, entity_type=entity_type, last=n) for (scope, entity_type), n in counters])
    highest = (func.greatest if postgres else func.max)(table.c.last, stmt.excluded.last)  # max(a, b) in SQLite
    return stmt.on_conflict_do_update(index_elements=[table.c.scope, table.c.entity_type], set_={"last": highest})


def ticket_scope(external_id: str) -> str:
    """The placeholder scope of one ticket: its ingest, its drafts, an approver's edits of them and the
    restore at publish all use this one, so a placeholder can only ever be restored into its own ticket."""
    return f"ticket:{external_id}"


def subject_scope(session: Session, subject_type: str, subject_id: int) -> str:
    """The scope of a draft's subject: a ticket's by its external id (as at ingest), an incident's by id."""
    if subject_type == "ticket":
        from opsdraft.models import Ticket

        ticket = session.get(Ticket, subject_id)
        if ticket is None:
            raise ValueError(f"ticket {subject_id} does not exist")
        return ticket_scope(ticket.external_id)
    return f"{subject_type}:{subject_id}"


def restore_for_publish(text: str, key: bytes, sealed: dict[str, str],
                        entities: frozenset[str] = frozenset({"PERSON"})) -> str:
    """The approved text with originals put back, only for `entities` (by default names alone): call it only
    on the text handed to Slack/the ticket system at publish, never on anything stored, prompted or logged."""
    return restore(text, Sealer(key).open_all(sealed), entities)


def publish_transform(settings: Settings, db):
    """For the outbox relay: an approved ticket reply gets the customer's name back just before it is produced
    to ticket-replies (the stored reply, the outbox row and everything else keep the placeholder)."""

    def transform(topic: str, payload: dict) -> dict:
        if topic != settings.topics.ticket_replies or not settings.redaction_restore_names or "scope" not in payload:
            return payload
        with db.session() as s:
            sealed = {p.placeholder: p.sealed for p in s.scalars(select(Placeholder).where(
                Placeholder.scope == payload["scope"], Placeholder.sealed.is_not(None)))}
        return payload | {"body": restore_for_publish(payload["body"], settings.redaction_key_bytes(), sealed)}

    return transform


def _fernet(settings: Settings):
    import base64
    import hashlib

    from cryptography.fernet import Fernet

    # A separate key from the placeholder HMAC key, derived from the same secret.
    digest = hashlib.sha256(b"opsdraft dead letters\0" + settings.redaction_key_bytes()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def sealer(settings: Settings):
    """Encrypt raw bytes for the dead-letter topic (the original may hold PII: never stored in the clear)."""
    f = _fernet(settings)
    return lambda raw: f.encrypt(raw).decode()


def unseal(settings: Settings, token: str) -> bytes:
    """Decrypt what `sealer` made; raises cryptography.fernet.InvalidToken with another key."""
    return _fernet(settings).decrypt(token.encode())
