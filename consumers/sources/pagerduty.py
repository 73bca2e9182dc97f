"""PagerDuty v3 webhooks: an incident's triggered/acknowledged/resolved… events, as alert state changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from consumers.sources.base import AlertEvent, Source, aware, normalise_severity, validate

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
        if severity == "unknown":  # no priority set: PagerDuty's urgency is all there is
            severity = "sev2" if inc.urgency == "high" else "sev4"
        by = f" by {ev.agent.summary}" if ev.agent and ev.agent.summary else ""
        return [AlertEvent(
            fingerprint=f"pagerduty:{inc.id}"[:200], name=inc.title[:200],
            service=(inc.service.summary or "unknown")[:200],
            severity=severity, status=status, summary=f"PagerDuty incident #{inc.number or inc.id}: {inc.title}{by}",
            labels={"pagerduty_incident": inc.id, "event_type": ev.event_type},
            starts_at=aware(inc.created_at), ends_at=aware(ev.occurred_at) if status == "resolved" else None,
            source="pagerduty", at=aware(ev.occurred_at),
        )]


def detect(data: dict[str, Any]) -> bool:
    return isinstance(data.get("event"), dict) and "event_type" in data["event"]


def parse(data: Any) -> list[AlertEvent]:
    """Events we do not use (incident.annotated, service.updated, ...) are no alert state change: nothing to
    apply, whatever their resource's shape. PagerDuty disables a webhook after a few 4xx, so they are not errors."""
    event = data.get("event") if isinstance(data, dict) else None
    if isinstance(event, dict) and isinstance(event.get("event_type"), str) and event["event_type"] not in _PD_STATUS:
        return []
    return validate(PagerDutyWebhook, data).events()


def key(data: dict[str, Any], events: list[AlertEvent]) -> str:
    """The incident (parse checked it has an id): all its events apply in order."""
    return f"pagerduty:{data['event']['data']['id']}"


def why_not(data: dict[str, Any]) -> str:
    return "not a PagerDuty v3 webhook: no 'event.event_type'"


SOURCE = Source("pagerduty", "alerts", detect, parse, key, why_not)
