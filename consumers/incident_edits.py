"""Human corrections to correlation: `/incident merge` (two incidents are one outage) and `/incident split` (a
service's alerts were not part of it). Each runs in one transaction: alerts, logs, signatures and services move
together, and both incidents' timelines say who did it."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from consumers.signatures import merge_signature
from opsdraft.models import Alert, Incident, IncidentSignature, IncidentStatus, LogEvent, TimelineEntry, utcnow


def merge(s: Session, into: Incident, other: Incident, actor: str) -> None:
    """Everything of `other` moves to `into`; `other` is closed as merged, with no postmortem of its own."""
    if other.status != IncidentStatus.open or into.status != IncidentStatus.open or into.id == other.id:
        return
    now = utcnow()
    s.execute(update(Alert).where(Alert.incident_id == other.id).values(incident_id=into.id))
    s.execute(update(LogEvent).where(LogEvent.incident_id == other.id).values(incident_id=into.id))
    s.execute(update(TimelineEntry).where(TimelineEntry.incident_id == other.id).values(incident_id=into.id))
    mine = {(g.service, g.template_key): g for g in s.scalars(select(IncidentSignature).where(
        IncidentSignature.incident_id == into.id))}
    for g in list(s.scalars(select(IncidentSignature).where(IncidentSignature.incident_id == other.id))):
        if (g.service, g.template_key) in mine:
            merge_signature(mine[(g.service, g.template_key)], g)
            s.delete(g)
        else:
            g.incident_id = into.id
    into.services = list(dict.fromkeys([*(into.services or [into.service]), *(other.services or [other.service])]))
    into.opened_at = min(into.opened_at, other.opened_at)
    into.all_resolved_at = None if any(a.status == "firing" for a in s.scalars(select(Alert).where(
        Alert.incident_id == into.id))) else into.all_resolved_at
    other.status, other.closed_at, other.close_note = IncidentStatus.closed, now, f"merged into #{into.id}"
    s.add(TimelineEntry(incident_id=into.id, at=now, kind="merged",
                        text=f"Incident #{other.id} ({other.title}) merged into this one by {actor}",
                        source_ref=f"slack:{actor}"))
    s.add(TimelineEntry(incident_id=other.id, at=now, kind="closed",
                        text=f"Merged into incident #{into.id} by {actor}", source_ref=f"slack:{actor}"))
    s.info.pop("open_incidents", None)
    s.info.pop("incidents_by_key", None)
    s.info.pop("signatures", None)
    s.info.pop("signatures_loaded", None)
    s.info.pop("correlation_index", None)


def split(s: Session, incident: Incident, service: str, actor: str) -> Incident | None:
    """`service`'s alerts, logs and signatures leave `incident` for a new incident of their own."""
    services = incident.services or [incident.service]
    if incident.status != IncidentStatus.open or service not in services or len(services) < 2:
        return None
    alerts = list(s.scalars(select(Alert).where(Alert.incident_id == incident.id, Alert.service == service)))
    first = min(alerts, key=lambda a: a.starts_at) if alerts else None
    new = Incident(title=f"{first.name} on {service}"[:300] if first else f"split from #{incident.id}: {service}",
                   group_key=f"{service}/{first.name if first else 'split'}"[:300], service=service,
                   services=[service], severity=first.severity if first else incident.severity,
                   status=IncidentStatus.open, opened_at=first.starts_at if first else utcnow())
    s.add(new)
    s.flush()
    for a in alerts:
        a.incident_id = new.id
    s.execute(update(LogEvent).where(LogEvent.incident_id == incident.id, LogEvent.service == service)
              .values(incident_id=new.id))
    s.execute(update(IncidentSignature).where(IncidentSignature.incident_id == incident.id,
                                              IncidentSignature.service == service).values(incident_id=new.id))
    incident.services = [x for x in services if x != service]
    if service == incident.service:
        incident.service = incident.services[0]
    now = utcnow()
    for target, text in ((incident, f"{service} split out into incident #{new.id} by {actor}"),
                         (new, f"Split out of incident #{incident.id} by {actor}")):
        s.add(TimelineEntry(incident_id=target.id, at=now, kind="split", text=text, source_ref=f"slack:{actor}"))
    if all(a.status == "resolved" for a in alerts) and alerts:
        new.all_resolved_at = max(a.ends_at for a in alerts)
    s.info.pop("open_incidents", None)
    s.info.pop("incidents_by_key", None)
    s.info.pop("signatures", None)
    s.info.pop("signatures_loaded", None)
    s.info.pop("correlation_index", None)
    return new
