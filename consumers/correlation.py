"""Correlation: which open incident a new alert belongs to when it has none of its own.

One outage makes several services alert under several names. An alert joins an open incident (rather than
opening its own) when both hold:
1. **time**: it started between the incident's opening minus `incident_correlation_window_s` and the incident's
   latest alert plus that window;
2. **shared evidence**, any of:
   - the same value of a label in `incident_correlation_labels` (default `cluster`) on one of its alerts;
   - the same host (the host part of the `instance` label);
   - a declared dependency between the services (`incident_dependencies`, either direction).
Declared incidents never absorb alerts. `/incident merge` and `/incident split` correct the result by hand.

The evidence of open incidents is indexed once per transaction (one query) and kept current as alerts join, so
an alert costs a few dictionary look-ups, not a scan of every open incident's alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from consumers.payloads import AlertEvent
from opsdraft.models import Alert, Incident, IncidentStatus
from opsdraft.settings import Settings


def host_of(labels: dict[str, str]) -> str:
    instance = labels.get("instance", "")
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


@dataclass
class _Profile:
    incident: Incident
    latest: datetime
    services: set[str] = field(default_factory=set)


class EvidenceIndex:
    def __init__(self, settings: Settings):
        self.labels = [label for label in settings.incident_correlation_labels.split(",") if label]
        self.deps = settings.incident_dependencies
        self.window = timedelta(seconds=settings.incident_correlation_window_s)
        self.profiles: dict[int, _Profile] = {}
        self.by_evidence: dict[tuple[str, str], set[int]] = {}  # ("cluster", "prod-eu-1") / ("host", h) -> ids

    @classmethod
    def of(cls, s: Session, settings: Settings) -> EvidenceIndex:
        if "correlation_index" not in s.info:
            index = s.info["correlation_index"] = cls(settings)
            with s.no_autoflush:
                open_ = {i.id: i for i in s.scalars(select(Incident).where(Incident.status == IncidentStatus.open))}
                for incident in open_.values():
                    index._profile(incident)
                rows = s.execute(select(Alert.incident_id, Alert.labels, Alert.starts_at).where(
                    Alert.incident_id.in_(list(open_)))) if open_ else []
                for incident_id, labels, starts_at in rows:
                    index._note(open_[incident_id], labels or {}, starts_at)
                for alert in s.new:  # alerts of this transaction, not flushed yet
                    if isinstance(alert, Alert) and alert.incident is not None and alert.incident.id in open_:
                        index._note(alert.incident, alert.labels or {}, alert.starts_at)
        return s.info["correlation_index"]

    def _profile(self, incident: Incident) -> _Profile:
        if incident.id not in self.profiles:
            self.profiles[incident.id] = _Profile(incident, incident.opened_at,
                                                  set(incident.services or [incident.service]))
        return self.profiles[incident.id]

    def _evidence(self, labels: dict) -> list[tuple[str, str]]:
        out = [(label, str(labels[label])) for label in self.labels if labels.get(label)]
        if host := host_of(labels):
            out.append(("host", host))
        return out

    def _note(self, incident: Incident, labels: dict, starts_at: datetime) -> None:
        p = self._profile(incident)
        p.latest = max(p.latest, starts_at)
        for key in self._evidence(labels):
            self.by_evidence.setdefault(key, set()).add(incident.id)

    def add(self, incident: Incident, service: str, labels: dict, starts_at: datetime) -> None:
        """An alert joined (or opened) `incident`."""
        self._note(incident, labels, starts_at)
        self.profiles[incident.id].services.add(service)

    def related(self, ev: AlertEvent) -> tuple[Incident, str] | None:
        """The open incident this alert should join, and why; None when it should open its own."""
        if not self.window:
            return None
        reasons: dict[int, str] = {}
        for key in self._evidence(ev.labels):
            for incident_id in self.by_evidence.get(key, ()):
                reasons.setdefault(incident_id, f"same {key[0]} {key[1]}")
        for incident_id, p in self.profiles.items():
            for service in p.services:
                if ev.service in self.deps.get(service, []) or service in self.deps.get(ev.service, []):
                    reasons.setdefault(incident_id, f"{ev.service} and {service} depend on each other")
        best = None
        for incident_id, reason in reasons.items():
            p = self.profiles[incident_id]
            if (p.incident.status != IncidentStatus.open or p.incident.group_key.startswith("declared:")
                    or not p.incident.opened_at - self.window <= ev.starts_at <= p.latest + self.window):
                continue
            if best is None or p.latest > best[0].latest:
                best = (p, reason)
        return (best[0].incident, best[1]) if best else None
