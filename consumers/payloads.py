"""What each topic accepts, validated at the edge, normalised into one shape per kind of event.

- alerts and tickets: the vendor sources in consumers/sources/ (its registry picks the one a body is);
- logs: the JSON log line below (worker.py turns plain-text lines into its fields with textlogs.py);
- incident commands: opsdraft.events.IncidentCommand.
The shared models are re-exported here for the code that applies them (service.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from consumers.sources import parse_alerts, parse_ticket
from consumers.sources.base import SEVERITY_RANK, AlertEvent, Requester, TicketIn, aware, normalise_severity, validate

__all__ = ["SEVERITY_RANK", "AlertEvent", "LogLine", "Requester", "TicketIn", "normalise_severity", "parse_alerts",
           "parse_log", "parse_ticket"]


class LogLine(BaseModel):
    """One log line: one JSON object per message."""

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
        return aware(v)


def parse_log(data: Any) -> LogLine:
    return validate(LogLine, data)
