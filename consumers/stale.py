"""Stale alerts, and what a close or reopen does to drafts. Alertmanager (and Grafana, which is Alertmanager
underneath) re-sends a firing alert at least once per repeat interval, and never sends the resolve of an alert
that was silenced or whose source disappeared: such an alert would hold its incident open forever. One not
re-sent for settings.alert_stale_after_repeats repeat intervals is marked stale; an incident whose alerts are
all resolved or stale closes (after the quiet period) with a note naming them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from opsdraft.models import Alert, Draft, DraftKind, DraftStatus, Incident
from opsdraft.settings import Settings

REPEATING_SOURCES = ("alertmanager", "grafana")  # the ones that re-send while firing; PagerDuty does not


def _fmt(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def mark_stale(s: Session, settings: Settings, now: datetime, timeline: Callable[..., None],
               touched: dict[int, Incident]) -> list[Alert]:
    """Mark the firing alerts not re-sent for too long stale; their incidents go into `touched` so that the
    commit's settle() asks whether all their alerts are now resolved or stale."""
    if not settings.alert_stale_after_repeats:
        return []
    quiet_for = settings.alert_repeat_interval_s * settings.alert_stale_after_repeats
    before = now - timedelta(seconds=quiet_for)
    stale = list(s.scalars(select(Alert).where(
        Alert.status == "firing", Alert.source.in_(REPEATING_SOURCES), Alert.last_seen_at < before,
    ).options(selectinload(Alert.incident))))
    for alert in stale:
        alert.status = "stale"
        # At the time it was last sent: that is when the evidence that it still fires stops.
        timeline(s, alert.incident, alert.last_seen_at, "alert_stale",
                 f"{alert.name} on {alert.service} was last sent firing at {_fmt(alert.last_seen_at)} and not "
                 f"re-sent for {quiet_for:g} s ({settings.alert_stale_after_repeats:g} repeat intervals): silenced, "
                 f"or its source is gone; marked stale at {_fmt(now)}", ("alert", alert))
        touched[alert.incident_id] = alert.incident
    return stale


def close_reason(s: Session, incident: Incident) -> tuple[str, str]:
    """(note, actor) for an incident closed because no alert of it fires any more."""
    stale = list(s.scalars(select(Alert.name).where(Alert.incident_id == incident.id, Alert.status == "stale")))
    if not stale:
        return "", "opsdraft (all alerts resolved)"
    names = ", ".join(sorted(set(stale))[:10])
    return (f"{len(stale)} alert(s) stale, never resolved ({names}): no longer sent by Alertmanager (silenced, or "
            f"the source is gone); closed as of when they were last sent", "opsdraft (alerts resolved or stale)")


def supersede_postmortems(s: Session, incident_id: int) -> Any:
    """A reopened incident's pending postmortem describes an incident that is not over: the one drafted at the
    next close replaces it."""
    return s.execute(update(Draft).where(
        Draft.subject_type == "incident", Draft.subject_id == incident_id, Draft.kind == DraftKind.postmortem,
        Draft.status == DraftStatus.pending,
    ).values(status=DraftStatus.superseded).execution_options(synchronize_session=False))
