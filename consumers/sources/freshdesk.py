"""Freshdesk-style ticket webhooks (an automation posting {"freshdesk_webhook": {...}} with its placeholders)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from consumers.sources.base import Requester, Source, TicketIn, ticket_status, validate


class _FDTicket(BaseModel):
    model_config = ConfigDict(extra="allow")
    ticket_id: int | str
    ticket_subject: str = Field(min_length=1)
    ticket_description: str = ""
    ticket_status: str = "open"
    ticket_requester_name: str = ""
    ticket_requester_email: str = ""
    ticket_created_at: datetime
    ticket_tags: list[str] | str = Field(default_factory=list)  # the {{ticket.tags}} placeholder: "a, b"
    ticket_latest_public_comment: str | None = None


class FreshdeskWebhook(BaseModel):
    freshdesk_webhook: _FDTicket

    def ticket_in(self) -> TicketIn:
        t = self.freshdesk_webhook
        tags = [x.strip() for x in t.ticket_tags.split(",") if x.strip()] if isinstance(t.ticket_tags, str) \
            else t.ticket_tags
        return TicketIn(id=f"FD-{t.ticket_id}", subject=t.ticket_subject, body=t.ticket_description,
                        requester=Requester(name=t.ticket_requester_name, email=t.ticket_requester_email),
                        created_at=t.ticket_created_at, tags=tags, status=ticket_status(t.ticket_status),
                        comment=t.ticket_latest_public_comment or None)


def detect(data: dict[str, Any]) -> bool:
    return "freshdesk_webhook" in data


def parse(data: Any) -> TicketIn:
    return validate(FreshdeskWebhook, data).ticket_in()


def key(data: dict[str, Any], ticket: TicketIn) -> str:
    return ticket.id


SOURCE = Source("freshdesk", "tickets", detect, parse, key)
