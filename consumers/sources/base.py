"""What every source maps onto (AlertEvent, TicketIn), the helpers they share, and the Source record itself.

Nothing here imports a source module, so the sources and the registry can all import this without a loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsdraft.bus import InvalidMessage

SEVERITY_RANK = {"sev1": 1, "sev2": 2, "sev3": 3, "sev4": 4, "unknown": 5}
_SEVERITY_ALIASES = {
    "critical": "sev1", "page": "sev1", "p1": "sev1", "sev1": "sev1",
    "high": "sev2", "error": "sev2", "major": "sev2", "p2": "sev2", "sev2": "sev2",
    "warning": "sev3", "warn": "sev3", "medium": "sev3", "p3": "sev3", "sev3": "sev3",
    "info": "sev4", "low": "sev4", "minor": "sev4", "p4": "sev4", "sev4": "sev4",
}


def normalise_severity(value: str | None) -> str:
    return _SEVERITY_ALIASES.get((value or "").strip().lower(), "unknown")


_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def aware(dt: datetime) -> datetime:
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
    at: datetime | None = None  # when this state change happened, when the source says (PagerDuty's occurred_at)


class Requester(BaseModel):
    name: str = ""
    email: str = ""


class TicketIn(BaseModel):
    """A new ticket, or a comment on or status change of an existing one (same id), whatever its source.
    Also the generic ticket JSON we document in the README, so it forbids fields it would silently drop."""

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
        return aware(v)

    def requester_text(self) -> str:
        r = self.requester
        text = r if isinstance(r, str) else (f"{r.name} <{r.email}>" if r.email else r.name)
        return text[:300]


_CLOSED = {"solved", "closed", "resolved", "4", "5"}  # Freshdesk numbers: 4 resolved, 5 closed


def ticket_status(value: str) -> str:
    """A help desk's status word (or Freshdesk's number) as ours: a ticket is either open or closed here."""
    return "closed" if value.strip().lower() in _CLOSED else "open"


def problems(exc: ValidationError) -> str:
    """The first few validation errors, short enough for a dead letter's reason or a 400's detail."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:5])


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any) -> M:
    """The body as a source's own model, or InvalidMessage naming the model and the broken fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid {model.__name__}: {problems(exc)}") from None


Kind = Literal["alerts", "tickets"]  # the topic a source feeds (a Topics attribute)
P = TypeVar("P", list[AlertEvent], TicketIn)


@dataclass(frozen=True)
class Source(Generic[P]):
    """One tool's webhook body. `detect` only looks at a JSON object's shape (cheap, never raises); `parse`
    validates it and maps it, raising InvalidMessage, or a ValueError the registry words as one."""

    name: str
    kind: Kind
    detect: Callable[[dict[str, Any]], bool]
    parse: Callable[[Any], P]
    key: Callable[[dict[str, Any], P], str]  # the partition key: keeps one group/incident/ticket in order
    why_not: Callable[[dict[str, Any]], str] | None = None  # for the receiver named after it: what is missing
