"""Prometheus Alertmanager's webhook (version 4), as Alertmanager sends it. Grafana alerting sends the same
shape plus a few fields, so grafana.py reuses this model."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from consumers.sources.base import AlertEvent, Source, aware, normalise_severity, validate

_ZERO_TIME = "0001-01-01"  # Alertmanager's "no end time yet"


class _AMAlert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: str | None = None  # a string: the zero time above is not a datetime pydantic accepts
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

    def events(self, source: str = "alertmanager") -> list[AlertEvent]:
        out = []
        for a in self.alerts:
            ends = None
            if a.endsAt and not a.endsAt.startswith(_ZERO_TIME) and a.status == "resolved":
                ends = aware(datetime.fromisoformat(a.endsAt.replace("Z", "+00:00")))
            # Alertmanager always sends one; a hand-written body may not, and the labels identify the alert.
            fp = a.fingerprint or hashlib.sha256(json.dumps(a.labels, sort_keys=True).encode()).hexdigest()[:16]
            text = a.annotations.get("summary") or a.annotations.get("description") or a.labels["alertname"]
            if a.annotations.get("description") and a.annotations.get("summary"):
                text = f"{a.annotations['summary']} — {a.annotations['description']}"
            out.append(AlertEvent(
                fingerprint=fp, name=a.labels["alertname"],
                service=a.labels.get("service") or a.labels.get("job") or "unknown",
                severity=normalise_severity(a.labels.get("severity")), status=a.status, summary=text,
                labels=a.labels, starts_at=aware(a.startsAt), ends_at=ends, source=source,
            ))
        return out


def detect(data: dict[str, Any]) -> bool:
    return "alerts" in data


def parse(data: Any) -> list[AlertEvent]:
    return validate(AlertmanagerWebhook, data).events()


def key(data: dict[str, Any], events: list[AlertEvent]) -> str:
    """The group: Alertmanager resends a group's alerts together, and they should apply in order."""
    return data.get("groupKey") or events[0].fingerprint


def why_not(data: dict[str, Any]) -> str:
    return "no 'alerts' list"


SOURCE = Source("alertmanager", "alerts", detect, parse, key, why_not)
