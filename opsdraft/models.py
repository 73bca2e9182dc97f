"""SQLAlchemy 2 models. Every text column holds redacted text only."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class DraftKind(StrEnum):
    timeline = "timeline"
    postmortem = "postmortem"
    ticket_reply = "ticket_reply"
    status_update = "status_update"  # a short update for stakeholders (bot/updates.py)


class DraftStatus(StrEnum):
    """pending -> approved -> published (final); pending -> rejected; pending -> superseded (edited or
    regenerated: a new version takes its place). Ticket replies go approved -> published in one step."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    published = "published"
    superseded = "superseded"


class Decision(StrEnum):
    """What an approver did to a draft (the `approvals` rows)."""

    approved = "approved"
    rejected = "rejected"
    edited = "edited"
    regenerated = "regenerated"


class IncidentStatus(StrEnum):
    open = "open"
    closed = "closed"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    group_key: Mapped[str] = mapped_column(String(300), index=True)
    service: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(20), default="unknown")
    status: Mapped[str] = mapped_column(String(10), default=IncidentStatus.open, index=True)  # IncidentStatus
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    all_resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    close_note: Mapped[str | None] = mapped_column(Text, default=None)
    # Every service whose alerts joined this incident (correlation), the first one being `service`.
    services: Mapped[list[Any]] = mapped_column(default=list)
    # Its firing windows, [[start, end or null], ...] as ISO times (opsdraft/incident_times.py): a reopen
    # starts a new one, so a duration never counts the quiet gap between them.
    windows: Mapped[list[Any]] = mapped_column(default=list)
    alerts: Mapped[list[Alert]] = relationship(back_populates="incident", order_by="Alert.id")
    timeline: Mapped[list[TimelineEntry]] = relationship(order_by="TimelineEntry.at")


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200), unique=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    service: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(20), default="unknown")
    status: Mapped[str] = mapped_column(String(10))  # firing | resolved | stale (no longer re-sent)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(40))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    # When its source last sent it firing (processing time): Alertmanager re-sends while it fires, so a long
    # silence means silenced or gone (settings.alert_stale_after_repeats).
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    incident: Mapped[Incident] = relationship(back_populates="alerts")


class LogEvent(Base):
    __tablename__ = "log_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), default=None, index=True)
    # The log template (consumers/templates.py) this line belongs to, and the host it came from.
    template_key: Mapped[str | None] = mapped_column(String(32), default=None)
    host: Mapped[str | None] = mapped_column(String(200), default=None)


class IncidentSignature(Base):
    """One log template seen in one incident: counts, first/last seen, hosts, per-minute counts (for the peak).
    Kept up to date at ingest, so the analysis reads a few rows instead of 20,000 log lines."""

    __tablename__ = "incident_signatures"
    __table_args__ = (UniqueConstraint("incident_id", "service", "template_key", name="uq_signature"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    service: Mapped[str] = mapped_column(String(200))
    template_key: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(Text)  # redacted, variable parts masked
    level: Mapped[str] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    hosts: Mapped[list[Any]] = mapped_column(default=list)  # up to MAX_HOSTS names
    host_count: Mapped[int] = mapped_column(default=0)
    per_minute: Mapped[dict[str, Any]] = mapped_column(default=dict)  # "YYYY-MM-DDTHH:MM" -> count
    first_log_id: Mapped[int | None] = mapped_column(default=None)


class Change(Base):
    """A deploy, config change, feature flag or infra action: from the changes topic, a webhook, or a log line
    recognised as one. Joined to incidents by service and time at analysis, not at ingest."""

    __tablename__ = "changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    service: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))  # deploy | config | feature-flag | infra
    action: Mapped[str] = mapped_column(String(30))  # deploy | rollback | failover | restart | scale | ...
    actor: Mapped[str] = mapped_column(String(200), default="")  # redacted
    description: Mapped[str] = mapped_column(Text, default="")  # redacted
    source: Mapped[str] = mapped_column(String(20))  # generic | github | argocd | log
    status: Mapped[str] = mapped_column(String(20), default="")
    external_id: Mapped[str] = mapped_column(String(200), default="")
    log_id: Mapped[int | None] = mapped_column(default=None)  # the log line it was recognised in


class MinerState(Base):
    """The log template miner's state, saved now and then so a restarted consumer keeps its template keys."""

    __tablename__ = "miner_states"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(String(300))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    comments: Mapped[list[Any]] = mapped_column(default=list)  # [{"at", "text"}], redacted
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | answered | closed
    created_at: Mapped[datetime]


class TimelineEntry(Base):
    __tablename__ = "timeline_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))  # opened | alert_firing | alert_resolved | log | closed | note
    text: Mapped[str] = mapped_column(Text)
    source_ref: Mapped[str] = mapped_column(String(100))  # e.g. alert:5, log:17, slack:U123


class IncidentChannel(Base):
    """An incident's own Slack channel (channel mode, bot/channels.py), its lead, roles and stated status."""

    __tablename__ = "incident_channels"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    lead: Mapped[str | None] = mapped_column(String(40), default=None)
    roles: Mapped[dict[str, Any]] = mapped_column(default=dict)  # role name -> Slack user id
    state: Mapped[str] = mapped_column(String(20), default="investigating")  # investigating|identified|…
    summary_ts: Mapped[str | None] = mapped_column(String(40), default=None)  # the pinned summary message
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)


class Draft(Base):
    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("request_id", name="uq_drafts_request_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # DraftKind
    subject_type: Mapped[str] = mapped_column(String(20))  # incident | ticket
    subject_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(default=1)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("drafts.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default=DraftStatus.pending)  # DraftStatus
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    model: Mapped[str] = mapped_column(String(200))
    # Claims the grounding checker could not find in the sources (flagged or removed before a human sees it).
    unsupported_claims: Mapped[list[Any]] = mapped_column(default=list)
    # The deterministic analysis an incident draft was made from (summarizer/analysis.py), for review.
    analysis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A ticket reply's [{"sentence", "sources": [{"key", "title"}]}]: the agent sees it, the customer never.
    citations: Mapped[list[Any]] = mapped_column(default=list)
    slack_channel: Mapped[str | None] = mapped_column(String(40), default=None)
    slack_ts: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(40), default=None)


class Approval(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(20))  # Decision
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))  # slack user id or role name
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Placeholder(Base):
    """Redaction placeholders per scope, keyed by an HMAC of the value (the value itself is never stored)."""

    __tablename__ = "placeholders"
    __table_args__ = (UniqueConstraint("scope", "digest", name="uq_placeholders_scope_digest"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique (scope, digest) index serves look-ups by scope (one less index to write).
    scope: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64))
    placeholder: Mapped[str] = mapped_column(String(60))
    # For ticket scopes only: the original, Fernet-encrypted, restored only when an approved reply is published.
    sealed: Mapped[str | None] = mapped_column(Text, default=None)
    # When a record last used it (for log lines, the line's own time; otherwise processing time), kept to the
    # hour: retention deletes log scopes' placeholders no line within its window used (consumers/retention.py).
    last_seen_at: Mapped[datetime | None] = mapped_column(default=utcnow, index=True)


class PlaceholderCounter(Base):
    """The highest placeholder number used per scope and entity type, so a new placeholder's number is one row's
    read, not a sort of the scope's placeholders (a busy service's log scope holds tens of thousands)."""

    __tablename__ = "placeholder_counters"
    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(60), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class ConsumerOffset(Base):
    """A consumer group's position in one partition, moved in the same transaction as the effects of the messages
    below it (opsdraft/offsets.py): exactly-once by offsets, one row per partition."""

    __tablename__ = "consumer_offsets"
    group_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    ahead: Mapped[list[int]] = mapped_column(JSON, default=list)  # offsets above next_offset already applied
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outbox(Base):
    """Messages to produce, written in the same transaction as the state change that causes them."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(200), default=None)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None, index=True)


class WebhookReceipt(Base):
    """A message a webhook answered 202 for, on the embedded (in-memory) broker only: kept, its body encrypted,
    until the consumers have applied it, so that a kill -9 of `opsdraft run` loses nothing (opsdraft/receipts.py).
    `partition`/`offset` say where it went; both are None while it waits to be produced again after a restart."""

    __tablename__ = "webhook_receipts"
    # forget_applied deletes by (topic, partition, offset below the group's position) every few seconds.
    __table_args__ = (Index("ix_webhook_receipts_position", "topic", "partition", "offset"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    partition: Mapped[int | None] = mapped_column(default=None, autoincrement=False)
    offset: Mapped[int | None] = mapped_column(BigInteger, default=None)
    key: Mapped[str | None] = mapped_column(String(200), default=None)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sealed: Mapped[str] = mapped_column(Text)  # Fernet token of the body (it may hold personal data)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class SeenSlackRequest(Base):
    """A signed Slack request already run, by its signature (bot/replay.py). Slack's signature stays valid for
    5 minutes, so a captured request replayed in that window would verify: this row makes it run once, for
    every process that serves Slack. Rows older than the window are deleted as new ones come."""

    __tablename__ = "seen_slack_requests"
    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
