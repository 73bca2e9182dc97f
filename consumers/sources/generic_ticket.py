"""The generic ticket JSON we document in the README (TicketIn itself): the catch-all for tickets."""

from __future__ import annotations

from typing import Any

from consumers.sources.base import Source, TicketIn, validate


def detect(data: dict[str, Any]) -> bool:
    return True  # last in the registry: whatever no help desk source recognised is meant to be this


def parse(data: Any) -> TicketIn:
    return validate(TicketIn, data)  # non-objects too: the registry sends them here, to be rejected


def key(data: dict[str, Any], ticket: TicketIn) -> str:
    return ticket.id


SOURCE = Source("generic_ticket", "tickets", detect, parse, key)
