"""The messages roles send each other over internal topics, and the outbox helpers that queue them."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from opsdraft.bus import add_outbox
from opsdraft.models import Incident, Ticket
from opsdraft.settings import Settings

DraftKind = Literal["timeline", "postmortem", "ticket_reply"]


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
    """`close` an incident, or `declare` one by hand (it has no alerts, so it closes only by command)."""

    action: Literal["close", "declare"]
    incident_id: int | None = None
    actor: str
    note: str = ""
    title: str = Field(default="", max_length=300)
    severity: Literal["sev1", "sev2", "sev3", "sev4", "unknown"] = "unknown"

    @model_validator(mode="after")
    def _complete(self) -> IncidentCommand:
        if self.action == "close" and self.incident_id is None:
            raise ValueError("close needs incident_id")
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


def _queue(s: Session, topic: str, msg: BaseModel, key: str) -> None:
    add_outbox(s, topic, msg.model_dump(mode="json"), key=key)


def request_draft(s: Session, settings: Settings, req: DraftRequest) -> None:
    _queue(s, settings.topics.draft_requests, req, f"{req.subject_type}:{req.subject_id}")


def incident_opened(s: Session, settings: Settings, incident: Incident) -> None:
    _queue(s, settings.topics.incident_events, IncidentEvent(event="opened", incident_id=incident.id),
           f"incident:{incident.id}")


def incident_reopened(s: Session, settings: Settings, incident: Incident) -> None:
    _queue(s, settings.topics.incident_events, IncidentEvent(event="reopened", incident_id=incident.id),
           f"incident:{incident.id}")


def incident_closed(s: Session, settings: Settings, incident: Incident, actor: str) -> None:
    key = f"incident:{incident.id}"
    _queue(s, settings.topics.incident_events,
           IncidentEvent(event="closed", incident_id=incident.id, actor=actor), key)
    request_draft(s, settings, DraftRequest(
        request_id=f"postmortem:incident:{incident.id}:closed:{incident.closed_at.isoformat()}",
        kind="postmortem", subject_type="incident", subject_id=incident.id, requested_by=actor))
    _queue(s, settings.topics.index_updates, IndexUpdate(kind="incident", id=incident.id), key)


def ticket_created(s: Session, settings: Settings, ticket: Ticket) -> None:
    request_draft(s, settings, DraftRequest(
        request_id=f"ticket_reply:ticket:{ticket.id}:new", kind="ticket_reply", subject_type="ticket",
        subject_id=ticket.id))


def ticket_resolved(s: Session, settings: Settings, ticket: Ticket) -> None:
    _queue(s, settings.topics.index_updates, IndexUpdate(kind="ticket", id=ticket.id), f"ticket:{ticket.id}")
