"""Correlation: which open incident a new alert belongs to when it has none of its own.

One outage makes several services alert under several names. An alert joins an open incident (rather than
opening its own) when both hold:
1. **time**: the incident's latest alert started at most `incident_correlation_window_s` before this one;
2. **shared evidence**, any of:
   - the same value of a label in `incident_correlation_labels` (default `cluster`) on one of its alerts;
   - the same host (the host part of the `instance` label);
   - a declared dependency between the services (`incident_dependencies`, either direction).
Declared incidents never absorb alerts. `/incident merge` and `/incident split` correct the result by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from consumers.payloads import AlertEvent
from opsdraft.models import Incident
from opsdraft.settings import Settings


def host_of(labels: dict[str, str]) -> str:
    instance = labels.get("instance", "")
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


def _shared_evidence(settings: Settings, ev: AlertEvent, incident: Incident) -> str | None:
    wanted = [label for label in settings.incident_correlation_labels.split(",") if label]
    host = host_of(ev.labels)
    for alert in incident.alerts:
        for label in wanted:
            if ev.labels.get(label) and alert.labels.get(label) == ev.labels[label]:
                return f"same {label} {ev.labels[label]}"
        if host and host_of(alert.labels) == host:
            return f"same host {host}"
    deps = settings.incident_dependencies
    for service in incident.services or [incident.service]:
        if ev.service in deps.get(service, []) or service in deps.get(ev.service, []):
            return f"{ev.service} and {service} depend on each other"
    return None


def _latest_signal(incident: Incident) -> datetime:
    return max((a.starts_at for a in incident.alerts), default=incident.opened_at)


def related_incident(settings: Settings, ev: AlertEvent, open_incidents: list[Incident]
                     ) -> tuple[Incident, str] | None:
    """The open incident this alert should join, and why; None when it should open its own."""
    window = timedelta(seconds=settings.incident_correlation_window_s)
    if not window:
        return None
    best: tuple[datetime, Incident, str] | None = None
    for incident in open_incidents:
        if incident.group_key.startswith("declared:"):
            continue
        latest = _latest_signal(incident)
        if not incident.opened_at - window <= ev.starts_at <= latest + window:
            continue
        reason = _shared_evidence(settings, ev, incident)
        if reason and (best is None or latest > best[0]):
            best = (latest, incident, reason)
    return (best[1], best[2]) if best else None
