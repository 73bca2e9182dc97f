"""What drafts are made from (incident and ticket facts), what they are (Draft), and how facts are shown.

All text is already redacted; placeholders like <PERSON_1> are kept. The same facts are the checker's sources
(incident_sources, ticket_sources), so a time or name shown from the record is always supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from summarizer.analysis import Analysis
from summarizer.checker import Source
from summarizer.formatting import fmt_datetime, utc
from summarizer.keyevents import analysis_sources

if TYPE_CHECKING:  # only a type here: importing the index would load FAISS for every user of the facts
    from summarizer.index import Hit

NO_MODEL = "none (deterministic)"


@dataclass
class Event:
    at: datetime
    source: str
    text: str
    ref: str  # "alert:5", "log:17", "timeline:3"


@dataclass
class IncidentFacts:
    id: int
    title: str
    service: str
    severity: str
    status: str
    opened_at: datetime
    closed_at: datetime | None
    events: list[Event]
    # The deterministic analysis (summarizer/analysis.py); None for facts made without a database (old benches).
    analysis: Analysis | None = None
    timeline_limit: int = 40  # lines in a timeline drawn from the analysis (settings.timeline_max_lines)
    # Its firing windows (opsdraft/incident_times.py), oldest first; empty: one, opened_at..closed_at.
    windows: list[tuple[datetime, datetime | None]] = field(default_factory=list)


@dataclass
class TicketFacts:
    key: str
    subject: str
    body: str
    requester: str
    tags: list[str]
    comments: list[str] = field(default_factory=list)  # the thread after the first message, oldest first


@dataclass
class Draft:
    kind: str  # "timeline" | "postmortem" | "ticket_reply"
    title: str
    body: str  # Markdown
    sources: list[str]
    model: str
    notes: list[str] = field(default_factory=list)
    unsupported_claims: list[str] = field(default_factory=list)  # filled by the grounding checker
    analysis: dict = field(default_factory=dict)  # an incident draft's analysis, as stored with it
    citations: list = field(default_factory=list)  # a ticket reply's sentence -> sources mapping


# --------------------------------------------------------------------------- events


def sorted_events(facts: IncidentFacts) -> list[Event]:
    return sorted(facts.events, key=lambda e: (utc(e.at), e.ref))


def alert_events(events: list[Event]) -> list[Event]:
    """The events that are alerts: how an incident was detected."""
    return [e for e in events if e.ref.startswith("alert:") or "alert" in e.source.lower()]


def duration(facts: IncidentFacts) -> str:
    """The time it fired: the sum of its firing windows (a reopen's gap is not counted; each window is listed),
    never the time until it was processed or closed."""
    windows = facts.windows or [(facts.opened_at, facts.closed_at)]
    if facts.closed_at is None or any(end is None for _, end in windows):
        return "ongoing (incident not closed)"
    total = _span(sum(int((utc(end) - utc(start)).total_seconds()) for start, end in windows if end))
    if len(windows) == 1:
        return total
    listed = ", ".join(f"{fmt_datetime(start)} to {fmt_datetime(end)}" for start, end in windows if end)
    return f"{total} in {len(windows)} firing windows ({listed})"


def _span(seconds: int) -> str:
    if seconds < 0:
        return "unknown"
    hours, rem = divmod(seconds, 3600)
    minutes, secs = divmod(rem, 60)
    parts = [f"{hours}h"] if hours else []
    parts.append(f"{minutes}m")
    if not hours and secs:
        parts.append(f"{secs}s")
    return " ".join(parts)


def duration_between(start: datetime, end: datetime) -> str:
    seconds = int((utc(end) - utc(start)).total_seconds())
    sign = "after" if seconds >= 0 else "before"  # e.g. "30s after"
    seconds = abs(seconds)
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m {secs}s {sign}" if minutes else f"{secs}s {sign}"


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


# --------------------------------------------------------------------------- facts as checker sources


def _facts_text(facts: IncidentFacts) -> str:
    """What the incident record itself says; supports the deterministic parts of a draft."""
    events = sorted_events(facts)
    alerts = alert_events(events)
    parts = [
        f"Incident #{facts.id}: {facts.title}. Service {facts.service}, severity {facts.severity}, "
        f"status {facts.status}.",
        f"Opened {fmt_datetime(facts.opened_at)}.",
        f"Closed {fmt_datetime(facts.closed_at)}." if facts.closed_at else "Not closed.",
        f"Duration {duration(facts)}. {len(events)} events recorded.",
    ]
    if alerts:
        parts.append(f"Detected {duration_between(facts.opened_at, alerts[0].at)} the incident was opened.")
    return " ".join(parts)


def incident_sources(facts: IncidentFacts, hits: list[Hit]) -> list[Source]:
    """The sources a postmortem or timeline may rest on: the record, its events, the retrieved runbooks."""
    out = [Source(f"incident:{facts.id}", _facts_text(facts))]
    out += [Source(e.ref, f"{fmt_datetime(e.at)} {e.source}: {e.text}") for e in sorted_events(facts)]
    if facts.analysis is not None:
        out += analysis_sources(facts.analysis)
    return out + [Source(h.key, h.text) for h in hits]


def ticket_sources(ticket: TicketFacts, hits: list[Hit]) -> list[Source]:
    # ticket text supports what the customer stated (order numbers...), never a promise
    text = f"{ticket.subject}\n{ticket.requester}\n{ticket.body}"
    return [Source(f"ticket:{ticket.key}", text, trusted=False), *(Source(h.key, h.text) for h in hits)]
