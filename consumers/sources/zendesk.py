"""Zendesk-style ticket webhooks (a trigger posting {"ticket": {...}}): a new ticket, a comment, a solve."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from consumers.sources.base import Requester, Source, TicketIn, ticket_status, validate


class _ZDTicket(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | str
    subject: str = Field(min_length=1)
    description: str = ""
    status: str = "open"
    requester: Requester | str = ""
    created_at: datetime
    tags: list[str] = Field(default_factory=list)
    latest_comment: str | dict[str, Any] | None = None  # the comment text, or an object with its body


class ZendeskWebhook(BaseModel):
    ticket: _ZDTicket

    def ticket_in(self) -> TicketIn:
        t = self.ticket
        comment = t.latest_comment.get("body") if isinstance(t.latest_comment, dict) else t.latest_comment
        return TicketIn(id=f"ZD-{t.id}", subject=t.subject, body=t.description, requester=t.requester,
                        created_at=t.created_at, tags=t.tags, status=ticket_status(t.status), comment=comment or None)


def detect(data: dict[str, Any]) -> bool:
    return isinstance(data.get("ticket"), dict)


def parse(data: Any) -> TicketIn:
    return validate(ZendeskWebhook, data).ticket_in()


def key(data: dict[str, Any], ticket: TicketIn) -> str:
    return ticket.id


SOURCE = Source("zendesk", "tickets", detect, parse, key)
