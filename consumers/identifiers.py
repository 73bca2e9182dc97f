"""Identifiers redacted the same way everywhere: alert names, services, label keys and values, fingerprints, log
attribute keys, ticket ids.

These are grouping keys (incidents group by service and alert name, dedup by fingerprint, logs and changes find
their incident by service, a ticket is updated by its id), so a scope's numbered placeholders (<PERSON_1> in one
incident, another person's <PERSON_1> in the next) would merge or split what must not be. Here a placeholder's
number is derived from the HMAC of the value (<EMAIL_48213377>): the same value gives the same placeholder in
every scope and process, distinct values (almost surely) distinct ones, and nothing can be restored from it.
Ordinary identifiers ("checkout", "HighErrorRate", "T-77") are no personal data and come out unchanged, and
values listed in OPSDRAFT_REDACTION_ALLOW are never touched.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from consumers.payloads import AlertEvent, LogLine, TicketIn
from redaction import PlaceholderMap, Redactor

# Identifiers are often values joined ("team/alice@example.com", a generic alert's fingerprint made of its label
# values): the redactor leaves path-like tokens alone, so each joined part is redacted on its own.
_JOINS = re.compile(r"([/|,;])")
_CACHE_SIZE = 20_000  # identifiers repeat (a service logs thousands of lines): each distinct value is redacted once


class StablePlaceholders(PlaceholderMap):
    """Placeholders numbered by the value's digest, not by order of appearance; nothing is sealed or stored."""

    def placeholder_for(self, entity_type: str, value: str) -> str:
        return f"<{entity_type}_{int(self.digest(entity_type, value)[:8], 16)}>"


class Identifiers:
    def __init__(self, redactor: Redactor, key: bytes):
        self.redactor, self.map = redactor, StablePlaceholders(key)
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()

    def text(self, value: str, source: str) -> str:
        if not value:
            return value
        k = (value, source)
        out = self._cache.get(k)
        if out is None:
            parts = _JOINS.split(value)  # separators at odd positions
            out = self._cache[k] = "".join(p if i % 2 else self.redactor.redact(p, self.map, source)
                                           for i, p in enumerate(parts))
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return out

    def mapping(self, value: dict[str, Any], source: str, values: bool) -> dict[str, Any]:
        """Keys redacted (and string values too with `values`); two keys that redact alike keep the first."""
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(v, dict):
                v = self.mapping(v, source, values)
            out.setdefault(self.text(k, source), self.text(v, source) if values and isinstance(v, str) else v)
        return out

    def alert(self, ev: AlertEvent) -> AlertEvent:
        fields = dict(fingerprint=self.text(ev.fingerprint, "alerts"), name=self.text(ev.name, "alerts"),
                      service=self.text(ev.service, "alerts"), labels=self.mapping(ev.labels, "alerts", values=True))
        return ev if all(getattr(ev, k) == v for k, v in fields.items()) else ev.model_copy(update=fields)

    def log(self, line: LogLine) -> LogLine:
        """The service and the attribute keys; attribute values are free text, redacted in the incident's scope."""
        service = self.text(line.service, "logs")
        attributes = self.mapping(line.attributes, "logs", values=False) if line.attributes else line.attributes
        if service == line.service and attributes == line.attributes:
            return line
        return line.model_copy(update={"service": service, "attributes": attributes})

    def ticket_id(self, t: TicketIn) -> TicketIn:
        ident = self.text(t.id, "tickets")
        return t if ident == t.id else t.model_copy(update={"id": ident})
