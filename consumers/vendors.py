"""Webhook bodies of other tools, mapped onto our alert and ticket shapes.

Alerts: Grafana alerting (its body is Alertmanager's plus a few fields, so payloads.py parses it) and PagerDuty
v3 webhooks. Tickets: Zendesk- and Freshdesk-style webhook bodies; their comments and status changes update
the same ticket."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from consumers.payloads import AlertEvent, Requester, TicketIn, _aware, _validate, normalise_severity

# --- PagerDuty v3 webhooks ---------------------------------------------------------------------------

_PD_STATUS = {"incident.triggered": "firing", "incident.reopened": "firing", "incident.acknowledged": "acknowledged",
              "incident.unacknowledged": "firing", "incident.resolved": "resolved"}


class _PDRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    summary: str = ""


class _PDIncident(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    created_at: datetime
    service: _PDRef
    urgency: str = "high"
    priority: _PDRef | None = None
    number: int | None = None
    html_url: str | None = None


class _PDEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    event_type: str
    resource_type: Literal["incident"]
    occurred_at: datetime
    agent: _PDRef | None = None
    data: _PDIncident


class PagerDutyWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    event: _PDEvent

    def events(self) -> list[AlertEvent]:
        ev, inc = self.event, self.event.data
        status = _PD_STATUS.get(ev.event_type)
        if status is None:  # annotations, delegations, priority changes…: nothing to apply
            return []
        severity = normalise_severity(inc.priority.summary if inc.priority else None)
        if severity == "unknown":
            severity = "sev2" if inc.urgency == "high" else "sev4"
        by = f" by {ev.agent.summary}" if ev.agent and ev.agent.summary else ""
        return [AlertEvent(
            fingerprint=f"pagerduty:{inc.id}"[:200], name=inc.title[:200],
            service=(inc.service.summary or "unknown")[:200],
            severity=severity, status=status, summary=f"PagerDuty incident #{inc.number or inc.id}: {inc.title}{by}",
            labels={"pagerduty_incident": inc.id, "event_type": ev.event_type},
            starts_at=_aware(inc.created_at), ends_at=_aware(ev.occurred_at) if status == "resolved" else None,
            source="pagerduty",
        )]


def is_pagerduty(data: dict[str, Any]) -> bool:
    return isinstance(data.get("event"), dict) and "event_type" in data["event"]


def parse_pagerduty(data: dict[str, Any]) -> list[AlertEvent]:
    return _validate(PagerDutyWebhook, data).events()


# --- Zendesk- and Freshdesk-style ticket webhooks ----------------------------------------------------

_CLOSED = {"solved", "closed", "resolved", "4", "5"}  # Freshdesk numbers: 4 resolved, 5 closed


class _ZDTicket(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | str
    subject: str = Field(min_length=1)
    description: str = ""
    status: str = "open"
    requester: Requester | str = ""
    created_at: datetime
    tags: list[str] = Field(default_factory=list)
    latest_comment: str | dict[str, Any] | None = None


class ZendeskWebhook(BaseModel):
    ticket: _ZDTicket

    def ticket_in(self) -> TicketIn:
        t = self.ticket
        comment = t.latest_comment.get("body") if isinstance(t.latest_comment, dict) else t.latest_comment
        return TicketIn(id=f"ZD-{t.id}", subject=t.subject, body=t.description, requester=t.requester,
                        created_at=t.created_at, tags=t.tags, status=_status(t.status), comment=comment or None)


class _FDTicket(BaseModel):
    model_config = ConfigDict(extra="allow")
    ticket_id: int | str
    ticket_subject: str = Field(min_length=1)
    ticket_description: str = ""
    ticket_status: str = "open"
    ticket_requester_name: str = ""
    ticket_requester_email: str = ""
    ticket_created_at: datetime
    ticket_tags: list[str] | str = Field(default_factory=list)
    ticket_latest_public_comment: str | None = None


class FreshdeskWebhook(BaseModel):
    freshdesk_webhook: _FDTicket

    def ticket_in(self) -> TicketIn:
        t = self.freshdesk_webhook
        tags = [x.strip() for x in t.ticket_tags.split(",") if x.strip()] if isinstance(t.ticket_tags, str) \
            else t.ticket_tags
        return TicketIn(id=f"FD-{t.ticket_id}", subject=t.ticket_subject, body=t.ticket_description,
                        requester=Requester(name=t.ticket_requester_name, email=t.ticket_requester_email),
                        created_at=t.ticket_created_at, tags=tags, status=_status(t.ticket_status),
                        comment=t.ticket_latest_public_comment or None)


def _status(value: str) -> str:
    return "closed" if value.strip().lower() in _CLOSED else "open"


def parse_vendor_ticket(data: dict[str, Any]) -> TicketIn | None:
    """A TicketIn from a Zendesk- or Freshdesk-style body, or None if the body is neither."""
    if "ticket" in data and isinstance(data["ticket"], dict):
        return _validate(ZendeskWebhook, data).ticket_in()
    if "freshdesk_webhook" in data:
        return _validate(FreshdeskWebhook, data).ticket_in()
    return None
