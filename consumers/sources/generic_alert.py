"""The generic alert JSON we document in the README: the catch-all for alerts no vendor source claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from consumers.sources.base import AlertEvent, Source, aware, normalise_severity, validate
from opsdraft.bus import InvalidMessage


class GenericAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")  # ours: a misspelt field is a mistake to report, not to drop
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
            labels=self.labels, starts_at=aware(self.starts_at),
            ends_at=aware(self.ends_at) if self.ends_at else None, source="generic",
        )]


def detect(data: dict[str, Any]) -> bool:
    return True  # last in the registry: whatever no vendor source recognised is meant to be this


def parse(data: Any) -> list[AlertEvent]:
    if not isinstance(data, dict):  # the registry sends non-objects here, the catch-all, to be rejected
        raise InvalidMessage("alert message must be a JSON object")
    return validate(GenericAlert, data).events()


def key(data: dict[str, Any], events: list[AlertEvent]) -> str:
    return events[0].fingerprint


SOURCE = Source("generic_alert", "alerts", detect, parse, key)
