"""Reading one incident's record from the database into the analysis (summarizer/analysis.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdraft.models import Alert, Change, Incident, IncidentSignature, LogEvent, TimelineEntry, utcnow
from opsdraft.settings import Settings
from summarizer.analysis import (
    AlertSpan,
    Analysis,
    ChangeFact,
    HumanEntry,
    SignatureFact,
    mark_background,
    pick_recoveries,
    rank_triggers,
)

HUMAN_KINDS = {"note", "acknowledged", "status", "lead", "role", "severity", "pinned"}
# Slack-sourced entries that are not key events: the opening, and channel chatter nobody pinned (bot/conversation.py).
CONTEXT_KINDS = {"opened", "message"}


def _end(a: Alert) -> datetime | None:
    """A stale alert (consumers/stale.py) never resolved: the evidence that it fired ends when it was last sent."""
    return a.ends_at or (a.last_seen_at if a.status == "stale" else None)


def _alert_spans(alerts: list[Alert]) -> list[AlertSpan]:
    spans: dict[tuple[str, str], list[Alert]] = {}
    for a in alerts:
        spans.setdefault((a.name, a.service), []).append(a)
    out = []
    for (name, service), group in spans.items():
        first = min(group, key=lambda a: a.starts_at)
        ended = [a for a in group if _end(a) is not None]
        firing = any(a.status == "firing" for a in group)
        last = max(ended, key=_end) if ended else first
        out.append(AlertSpan(name, service, first.severity, first.starts_at,
                             None if firing or not ended else _end(last), len(group), f"alert:{first.id}",
                             f"alert:{last.id}"))
    return sorted(out, key=lambda a: a.first_start)


def _signature(row: IncidentSignature) -> SignatureFact:
    peak_minute, peak_count = max(row.per_minute.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0))
    ref = f"log:{row.first_log_id}" if row.first_log_id else f"signature:{row.id}"
    return SignatureFact(row.service, row.level, row.template, row.count, row.first_at, row.last_at, peak_minute,
                         peak_count, list(row.hosts), row.host_count, ref, dict(row.per_minute))


def _change(c: Change) -> ChangeFact:
    return ChangeFact(c.at, c.service, c.version, c.kind, c.action, c.actor, c.description, c.source,
                      f"change:{c.id}", c.status)


def _human(entries: list[TimelineEntry]) -> list[HumanEntry]:
    return [HumanEntry(e.at, e.kind, e.text, e.source_ref) for e in entries
            if e.kind in HUMAN_KINDS or (e.source_ref.startswith("slack:") and e.kind not in CONTEXT_KINDS)]


def analyse(s: Session, incident_id: int, settings: Settings) -> Analysis:
    inc = s.get(Incident, incident_id)
    alerts = list(s.scalars(select(Alert).where(Alert.incident_id == incident_id)))
    spans = _alert_spans(alerts)
    signatures = [_signature(r) for r in s.scalars(select(IncidentSignature).where(
        IncidentSignature.incident_id == incident_id))]
    first_alert = spans[0].first_start if spans else None
    mark_background(signatures, first_alert)
    symptoms = [g for g in signatures if not g.background and g.level in ("ERROR", "CRITICAL")]
    first_error = min((g.first_at for g in symptoms), default=None)
    starts = [t for t in (first_error, first_alert) if t is not None]
    start = min(starts) if starts else inc.opened_at
    ends = [a.last_end for a in spans]
    end = max(ends) if ends and all(ends) else None
    lookback = timedelta(seconds=settings.analysis_trigger_lookback_s)
    until = (end or inc.closed_at or utcnow()) + timedelta(minutes=5)
    changes = _one_per_change([_change(c) for c in s.scalars(select(Change).where(
        Change.at >= start - lookback, Change.at <= until).order_by(Change.at))])
    services = list(inc.services or [inc.service])
    triggers = rank_triggers(changes, services, {g.service for g in symptoms}, settings.incident_dependencies,
                             start, lookback)
    recoveries = pick_recoveries(changes, triggers[0] if triggers else None, start, end)
    recovery = recoveries[-1] if recoveries else None
    _add_samples(s, signatures)
    human = _human(list(s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id))))
    hosts = sorted({h for g in symptoms for h in g.hosts})
    return Analysis(
        services=services, impact_start=start, impact_end=end, first_error_at=first_error, first_alert_at=first_alert,
        first_human_at=min((h.at for h in human), default=None), alerts=spans,
        signatures=sorted(signatures, key=lambda g: (g.background, -g.count)), triggers=triggers[:3],
        recovery=recovery, recoveries=recoveries,
        changes=_relevant_changes(changes, services, triggers, recoveries, start, end),
        human=sorted(human, key=lambda h: h.at), hosts=hosts[:50], host_count=len(hosts))


def _one_per_change(changes: list[ChangeFact]) -> list[ChangeFact]:
    """A deploy reported by its sender and also logged by the service is one change: keep the sender's."""
    sent = [c for c in changes if c.source != "log"]
    return [c for c in changes if c.source != "log" or not any(
        o.service == c.service and o.version == c.version and o.action == c.action
        and abs((o.at - c.at).total_seconds()) <= 600 for o in sent)]


def _add_samples(s: Session, signatures: list[SignatureFact]) -> None:
    """Each signature's first line (one query): '502' and 'x509' read better than a template's <NUM>."""
    ids = {int(g.ref.split(":")[1]): g for g in signatures if g.ref.startswith("log:")}
    for n in range(0, len(ids), 500):
        chunk = list(ids)[n:n + 500]
        for log_id, message in s.execute(select(LogEvent.id, LogEvent.message).where(LogEvent.id.in_(chunk))):
            ids[log_id].sample = message


def _relevant_changes(changes: list[ChangeFact], services: list[str], triggers: list[ChangeFact],
                      recoveries: list[ChangeFact], start: datetime, end: datetime | None) -> list[ChangeFact]:
    """The changes a timeline shows: the ranked triggers, the recoveries, and the incident's own services'."""
    keep = {id(c) for c in triggers[:3]} | {id(c) for c in recoveries}
    until = (end or start) + timedelta(minutes=1)
    return [c for c in changes if id(c) in keep or (c.service in services and start <= c.at <= until)]
