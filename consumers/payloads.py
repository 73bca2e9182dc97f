"""What each topic accepts, validated at the edge, normalised into one shape per kind of event."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsdraft.bus import InvalidMessage

SEVERITY_RANK = {"sev1": 1, "sev2": 2, "sev3": 3, "sev4": 4, "unknown": 5}
_SEVERITY_ALIASES = {
    "critical": "sev1", "page": "sev1", "p1": "sev1", "sev1": "sev1",
    "high": "sev2", "error": "sev2", "major": "sev2", "p2": "sev2", "sev2": "sev2",
    "warning": "sev3", "warn": "sev3", "medium": "sev3", "p3": "sev3", "sev3": "sev3",
    "info": "sev4", "low": "sev4", "minor": "sev4", "p4": "sev4", "sev4": "sev4",
}
_ZERO_TIME = "0001-01-01"  # Alertmanager's "no end time yet"


def normalise_severity(value: str | None) -> str:
    return _SEVERITY_ALIASES.get((value or "").strip().lower(), "unknown")


_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def _aware(dt: datetime) -> datetime:
    """UTC, and within a range where time arithmetic cannot overflow (year 9999 is a typo, not an event)."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if not _EARLIEST <= dt < _LATEST:
        raise ValueError(f"time {dt.isoformat()} is out of range (1970 to 2200)")
    return dt


class AlertEvent(BaseModel):
    """One alert state change, whatever its source."""

    fingerprint: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    service: str = Field(min_length=1, max_length=200)
    severity: str
    status: Literal["firing", "acknowledged", "resolved"]
    summary: str
    labels: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    source: str


# --- Prometheus Alertmanager webhook (version 4), as Alertmanager sends it -----------------------------

class _AMAlert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None

    @field_validator("labels")
    @classmethod
    def _has_name(cls, v: dict[str, str]) -> dict[str, str]:
        if "alertname" not in v:
            raise ValueError("labels.alertname is required")
        return v


class AlertmanagerWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str = "4"
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[_AMAlert] = Field(min_length=1)

    def events(self) -> list[AlertEvent]:
        out = []
        for a in self.alerts:
            ends = None
            if a.endsAt and not a.endsAt.startswith(_ZERO_TIME) and a.status == "resolved":
                ends = _aware(datetime.fromisoformat(a.endsAt.replace("Z", "+00:00")))
            fp = a.fingerprint or hashlib.sha256(json.dumps(a.labels, sort_keys=True).encode()).hexdigest()[:16]
            text = a.annotations.get("summary") or a.annotations.get("description") or a.labels["alertname"]
            if a.annotations.get("description") and a.annotations.get("summary"):
                text = f"{a.annotations['summary']} — {a.annotations['description']}"
            out.append(AlertEvent(
                fingerprint=fp, name=a.labels["alertname"],
                service=a.labels.get("service") or a.labels.get("job") or "unknown",
                severity=normalise_severity(a.labels.get("severity")), status=a.status, summary=text,
                labels=a.labels, starts_at=_aware(a.startsAt), ends_at=ends, source="alertmanager",
            ))
        return out


# --- The generic alert JSON we document in the README ------------------------------------------------

class GenericAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fingerprint: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    service: str = Field(min_length=1, max_length=200)
    status: Literal["firing", "resolved"]
    severity: str = "unknown"
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None

    def events(self) -> list[AlertEvent]:
        return [AlertEvent(
            fingerprint=self.fingerprint, name=self.name, service=self.service,
            severity=normalise_severity(self.severity), status=self.status, summary=self.summary or self.name,
            labels=self.labels, starts_at=_aware(self.starts_at),
            ends_at=_aware(self.ends_at) if self.ends_at else None, source="generic",
        )]


def parse_alerts(data: Any) -> list[AlertEvent]:
    """Alertmanager, Grafana alerting (Alertmanager's shape plus orgId), PagerDuty v3, or the generic alert."""
    from consumers.vendors import is_pagerduty, parse_pagerduty

    if not isinstance(data, dict):
        raise InvalidMessage("alert message must be a JSON object")
    try:
        if is_pagerduty(data):
            return parse_pagerduty(data)
        if "alerts" in data:
            events = _validate(AlertmanagerWebhook, data).events()
            if "orgId" in data:
                for ev in events:
                    ev.source = "grafana"
            return events
        return _validate(GenericAlert, data).events()
    except ValidationError as exc:  # a mapped field broke a limit, e.g. a 5,000-character alert name
        raise InvalidMessage(f"invalid alert: {_problems(exc)}") from None
    except ValueError as exc:  # e.g. an endsAt that is not a time
        raise InvalidMessage(f"invalid alert: {exc}") from None


# --- Logs: one JSON object per message ---------------------------------------------------------------

class LogLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timestamp: datetime
    service: str = Field(min_length=1, max_length=200)
    level: str = "INFO"
    message: str = Field(max_length=100_000)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        aliases = {"WARN": "WARNING", "ERR": "ERROR", "FATAL": "CRITICAL", "CRIT": "CRITICAL"}
        v = aliases.get(v, v)
        if v not in {"TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return v

    @field_validator("timestamp")
    @classmethod
    def _tz(cls, v: datetime) -> datetime:
        return _aware(v)


def parse_log(data: Any) -> LogLine:
    return _validate(LogLine, data)


# --- Tickets: the generic ticket JSON we document in the README --------------------------------------

class Requester(BaseModel):
    name: str = ""
    email: str = ""


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=1000)
    body: str = Field(max_length=100_000)
    requester: Requester | str
    created_at: datetime
    tags: list[str] = Field(default_factory=list)
    status: Literal["open", "closed"] | None = None  # a status change of an existing ticket
    comment: str | None = Field(default=None, max_length=100_000)  # a new comment on it

    @field_validator("created_at")
    @classmethod
    def _tz(cls, v: datetime) -> datetime:
        return _aware(v)

    def requester_text(self) -> str:
        r = self.requester
        text = r if isinstance(r, str) else (f"{r.name} <{r.email}>" if r.email else r.name)
        return text[:300]


def parse_ticket(data: Any) -> TicketIn:
    """The generic ticket, or a Zendesk- or Freshdesk-style webhook body."""
    from consumers.vendors import parse_vendor_ticket

    try:
        if isinstance(data, dict) and (vendor := parse_vendor_ticket(data)):
            return vendor
    except ValidationError as exc:  # the mapped ticket broke a limit, e.g. a created_at in year 1
        raise InvalidMessage(f"invalid ticket: {_problems(exc)}") from None
    return _validate(TicketIn, data)


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:5])


def _validate(model: type[BaseModel], data: Any):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid {model.__name__}: {_problems(exc)}") from None
