"""Typed topics: every message one role sends another, the topic it goes to and its partition key, in one table.

`publish(s, topics, msg)` is the only way to queue a message: it looks the message's type up in `ROUTES`, so a
topic and its key are never invented at a call site. A consumer declares `{topic: Route}`-backed handlers with
`opsdraft.bus.typed_handler`, which parses each message into its model before the handler sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from opsdraft.models import DraftKind, Incident, Outbox, Ticket
from opsdraft.settings import Settings, Topics


class DraftRequest(BaseModel):
    """Ask the summarizer for a draft. `request_id` makes repeated requests idempotent."""

    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    kind: DraftKind
    subject_type: Literal["incident", "ticket"]
    subject_id: int
    requested_by: str = "opsdraft"
    instructions: str = ""
    parent_draft_id: int | None = None  # set when regenerating or editing a draft


class DraftReady(BaseModel):
    draft_id: int
    kind: DraftKind


class IncidentEvent(BaseModel):
    event: Literal["opened", "reopened", "closed"]
    incident_id: int
    actor: str = "opsdraft"


class IncidentCommand(BaseModel):
    """`close` an incident, `declare` one by hand (it has no alerts, so it closes only by command), `merge` another
    incident into it, or `split` one service's alerts and logs out of it into an incident of their own."""

    action: Literal["close", "declare", "merge", "split"]
    incident_id: int | None = None
    other_id: int | None = None  # merge: the incident merged into incident_id
    service: str = Field(default="", max_length=200)  # split: the service that leaves
    actor: str
    note: str = ""
    title: str = Field(default="", max_length=300)
    severity: Literal["sev1", "sev2", "sev3", "sev4", "unknown"] = "unknown"

    @model_validator(mode="after")
    def _complete(self) -> IncidentCommand:
        if self.action in ("close", "merge", "split") and self.incident_id is None:
            raise ValueError(f"{self.action} needs incident_id")
        if self.action == "merge" and self.other_id is None:
            raise ValueError("merge needs other_id")
        if self.action == "split" and not self.service:
            raise ValueError("split needs service")
        if self.action == "declare" and not self.title.strip():
            raise ValueError("declare needs a title")
        return self


class SimilarRequest(BaseModel):
    """/incident similar: the summarizer searches its index and answers with a SimilarResult."""

    incident_id: int
    requested_by: str
    response_url: str = ""  # Slack's, valid 30 minutes; else the answer is an ephemeral in `channel`
    channel: str = ""
    k: int = Field(default=5, ge=1, le=20)


class SimilarMatch(BaseModel):
    key: str
    title: str
    score: float


class SimilarResult(BaseModel):
    request: SimilarRequest
    matches: list[SimilarMatch]
    error: str = ""


class IndexUpdate(BaseModel):
    kind: Literal["incident", "ticket", "runbooks"]
    id: int | None = None


class TicketReply(BaseModel):
    """An approved reply, the one message that leaves opsdraft for a ticketing system (`ticket-replies`).

    `body` is the customer's text alone (no citation, file name or id) and holds placeholders in the outbox; the
    relay restores the customer's name from `scope`, the ticket's own, as it produces the message
    (opsdraft.privacy.publish_transform). `sources` is for the agent and the ticketing system, never the
    customer: `[{"sentence", "sources": [{"key", "title"}]}]`, empty when no source answered."""

    ticket_id: str
    draft_id: int
    version: int
    body: str
    sources: list[Any] = []
    approved_by: str
    approved_at: str
    scope: str


class StatusUpdate(BaseModel):
    """An approved stakeholder update (`incident-updates`), for a status page or an email integration.

    {"incident_id": 42, "draft_id": 7, "version": 1, "title": "…", "severity": "sev2",
     "state": "identified", "body": "…", "approved_by": "U123", "approved_at": "2026-11-20T14:05:00+00:00"}
    `body` is redacted text (placeholders such as <PERSON_1>), Slack mrkdwn."""

    incident_id: int
    draft_id: int
    version: int
    title: str
    severity: str
    state: str
    body: str
    approved_by: str
    approved_at: str


class FollowUp(BaseModel):
    """One action item of an approved postmortem (`follow-ups`), ready for a Jira or Linear bridge; keyed
    by `key` so a re-approved postmortem's items replace, not duplicate, the earlier ones downstream.

    {"key": "incident:42:1", "incident_id": 42, "title": "Add a canary stage to checkout deploys",
     "owner": "U123", "due": "2026-12-01", "postmortem_draft_id": 9}
    `owner` is a Slack user id or a redacted name, "" when the postmortem named none; `due` an ISO date or ""."""

    key: str
    incident_id: int
    title: str = Field(max_length=500)
    owner: str = ""
    due: str = ""
    postmortem_draft_id: int


@dataclass(frozen=True)
class Route:
    """Where a message type goes: the attribute of `Topics` naming its topic, and its partition key (messages
    with one key stay in order on one partition)."""

    topic: str
    key: Callable[[Any], str]


ROUTES: dict[type[BaseModel], Route] = {
    DraftRequest: Route("draft_requests", lambda m: f"{m.subject_type}:{m.subject_id}"),
    DraftReady: Route("drafts_ready", lambda m: f"draft:{m.draft_id}"),
    IncidentEvent: Route("incident_events", lambda m: f"incident:{m.incident_id}"),
    # A declare has no incident yet: one person's declares stay in order.
    IncidentCommand: Route("incident_commands", lambda m: f"incident:{m.incident_id}" if m.incident_id is not None
                           else f"declare:{m.actor}"),
    SimilarRequest: Route("similar_requests", lambda m: f"incident:{m.incident_id}"),
    SimilarResult: Route("similar_results", lambda m: f"incident:{m.request.incident_id}"),
    IndexUpdate: Route("index_updates", lambda m: f"{m.kind}:{m.id}" if m.id is not None else m.kind),
    TicketReply: Route("ticket_replies", lambda m: m.ticket_id),
    StatusUpdate: Route("incident_updates", lambda m: f"incident:{m.incident_id}"),
    FollowUp: Route("follow_ups", lambda m: m.key),
}


def topic_of(topics: Topics, model: type[BaseModel]) -> str:
    return getattr(topics, ROUTES[model].topic)


def publish(s: Session, topics: Topics, msg: BaseModel) -> None:
    """Queue `msg` in the caller's transaction; the outbox relay produces it once that transaction commits."""
    route = ROUTES[type(msg)]
    s.add(Outbox(topic=getattr(topics, route.topic), key=route.key(msg), payload=msg.model_dump(mode="json")))


# The domain's messages, by what happened.

def request_draft(s: Session, settings: Settings, req: DraftRequest) -> None:
    publish(s, settings.topics, req)


def incident_opened(s: Session, settings: Settings, incident: Incident) -> None:
    publish(s, settings.topics, IncidentEvent(event="opened", incident_id=incident.id))


def incident_reopened(s: Session, settings: Settings, incident: Incident) -> None:
    publish(s, settings.topics, IncidentEvent(event="reopened", incident_id=incident.id))


def incident_closed(s: Session, settings: Settings, incident: Incident, actor: str) -> None:
    publish(s, settings.topics, IncidentEvent(event="closed", incident_id=incident.id, actor=actor))
    request_draft(s, settings, DraftRequest(
        request_id=f"postmortem:incident:{incident.id}:closed:{incident.closed_at.isoformat()}",
        kind=DraftKind.postmortem, subject_type="incident", subject_id=incident.id, requested_by=actor))
    publish(s, settings.topics, IndexUpdate(kind="incident", id=incident.id))


def ticket_created(s: Session, settings: Settings, ticket: Ticket) -> None:
    request_draft(s, settings, DraftRequest(
        request_id=f"ticket_reply:ticket:{ticket.id}:new", kind=DraftKind.ticket_reply, subject_type="ticket",
        subject_id=ticket.id))


def ticket_updated(s: Session, settings: Settings, ticket: Ticket, comments: int) -> None:
    """A follow-up message on an open ticket: its suggestion is drafted again with the whole thread."""
    request_draft(s, settings, DraftRequest(
        request_id=f"ticket_reply:ticket:{ticket.id}:comment:{comments}", kind=DraftKind.ticket_reply,
        subject_type="ticket", subject_id=ticket.id))


def ticket_resolved(s: Session, settings: Settings, ticket: Ticket) -> None:
    publish(s, settings.topics, IndexUpdate(kind="ticket", id=ticket.id))
