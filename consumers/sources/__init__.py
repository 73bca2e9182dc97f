"""The registry of the bodies we accept, one module per source (Keep-style): each has a name, the topic
kind it feeds, detect(data) and parse(data). The consumers (payloads.parse_alerts / parse_ticket) and the
webhook receivers both ask this registry, so a receiver answers 202 for exactly what the consumer applies.

Order matters: the first source of a kind that detects a body parses it, and the last of each kind is the
catch-all (our generic JSON). PagerDuty comes first (a body with a PagerDuty event and an 'alerts' list has
always been read as PagerDuty's); Grafana before Alertmanager because Grafana's body is Alertmanager's plus orgId."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from consumers.sources import (
    alertmanager,
    freshdesk,
    generic_alert,
    generic_ticket,
    grafana,
    pagerduty,
    zendesk,
)
from consumers.sources.base import AlertEvent, Kind, Source, TicketIn, problems
from opsdraft.bus import InvalidMessage

SOURCES: tuple[Source[Any], ...] = (
    pagerduty.SOURCE, grafana.SOURCE, alertmanager.SOURCE, generic_alert.SOURCE,
    zendesk.SOURCE, freshdesk.SOURCE, generic_ticket.SOURCE,
)
BY_NAME: dict[str, Source[Any]] = {s.name: s for s in SOURCES}


def recognise(kind: Kind, data: Any) -> Source[Any]:
    """The source that will parse this body on a topic of this kind. A non-object goes to the catch-all,
    whose validation says what is wrong with it."""
    candidates = [s for s in SOURCES if s.kind == kind]
    if not isinstance(data, dict):
        return candidates[-1]
    return next(s for s in candidates if s.detect(data))


def read(source: Source[Any], data: Any) -> Any:
    """source.parse, with every failure as InvalidMessage (so the message dead-letters, or a receiver answers
    400): a mapped field that broke a limit (a 5,000-character alert name, a created_at in year 1) raises a
    ValidationError, a time that is not one a ValueError."""
    noun = source.kind.removesuffix("s")
    try:
        return source.parse(data)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid {noun}: {problems(exc)}") from None
    except ValueError as exc:
        raise InvalidMessage(f"invalid {noun}: {exc}") from None


def parse_alerts(data: Any) -> list[AlertEvent]:
    """Alertmanager, Grafana alerting, PagerDuty v3, or the generic alert."""
    return read(recognise("alerts", data), data)


def parse_ticket(data: Any) -> TicketIn:
    """The generic ticket, or a Zendesk- or Freshdesk-style webhook body."""
    return read(recognise("tickets", data), data)
