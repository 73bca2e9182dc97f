"""Status updates for stakeholders: `/incident update` (or the summary's button) drafts a short update from the
incident's state and its latest human entries and signals; it goes through the same Approve / Edit / Reject flow
as every draft and, once approved, is produced to `incident-updates` (service.approve) and posted to
OPSDRAFT_SLACK_STAKEHOLDER_CHANNEL (flows.publish). Drafted here, deterministically, rather than by the model:
an update must say only what the record says, and must come in seconds while the incident is on."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import channel_of, shown
from opsdraft.events import DraftReady, StatusUpdate, publish
from opsdraft.models import Draft, DraftKind, Incident, TimelineEntry
from opsdraft.settings import Settings

LATEST = 6  # entries an update lists: stakeholders want the gist, the channel has the rest
SHOWN_KINDS = {"note", "status", "severity", "lead", "pinned", "alert_firing", "alert_resolved", "closed",
               "reopened", "opened"}


def state_of(s: Session, inc: Incident) -> str:
    row = channel_of(s, inc.id)
    if row is not None:
        return row.state
    latest = s.scalar(select(TimelineEntry.text).where(TimelineEntry.incident_id == inc.id,
                                                       TimelineEntry.kind == "status")
                      .order_by(TimelineEntry.at.desc(), TimelineEntry.id.desc()).limit(1))
    return latest.rsplit(" ", 1)[-1] if latest else ("resolved" if inc.status == "closed" else "investigating")


def update_body(s: Session, inc: Incident) -> tuple[str, list[str]]:
    entries = list(s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == inc.id,
                                                         TimelineEntry.kind.in_(SHOWN_KINDS))
                             .order_by(TimelineEntry.at.desc(), TimelineEntry.id.desc()).limit(LATEST)))
    state = state_of(s, inc)
    lines = [f"*Incident #{inc.id}: {shown(inc.title)}*", f"Status: *{state}* · severity {inc.severity} · "
             f"open since {inc.opened_at:%H:%M UTC}" + (f", closed {inc.closed_at:%H:%M UTC}" if inc.closed_at else "")]
    if entries:
        lines += ["", "Latest:"]
        lines += [f"• {e.at:%H:%M} {shown(' '.join(e.text.split())[:300])}" for e in reversed(entries)]
    lines += ["", "Next update when the status changes."]
    return "\n".join(lines), [f"timeline:{e.id}" for e in reversed(entries)]


def draft_update(s: Session, settings: Settings, incident_id: int, user: str, parent: Draft | None = None,
                 instructions: str = "") -> Draft:
    """A pending status update, posted for approval by the bot's consumer (DraftReady); with `parent`, its next
    version (Regenerate: drafted afresh from the record as it is now)."""
    inc = s.get(Incident, incident_id)
    if inc is None:
        raise ValueError(f"incident #{incident_id} does not exist")
    body, sources = update_body(s, inc)
    d = Draft(request_id=f"status_update:incident:{inc.id}:{uuid.uuid4().hex}", kind=DraftKind.status_update,
              subject_type="incident", subject_id=inc.id, title=f"Status update: incident #{inc.id}", body=body,
              sources=sources, notes=[f"Requested by <@{user}>; drafted from the incident's record."],
              model="none (from the record)", version=parent.version + 1 if parent else 1,
              parent_id=parent.id if parent else None)
    if instructions:  # the record decides what an update says; a reviewer's wish is kept for the next editor
        d.notes = [*d.notes, f"Regenerate instructions (not applied; use Edit): {instructions[:300]}"]
    s.add(d)
    s.flush()
    publish(s, settings.topics, DraftReady(draft_id=d.id, kind=d.kind))
    return d


def approved(s: Session, settings: Settings, d: Draft, user: str) -> None:
    """Queue the approved update for integrations, in the approval's transaction."""
    inc = s.get(Incident, d.subject_id)
    publish(s, settings.topics, StatusUpdate(
        incident_id=inc.id, draft_id=d.id, version=d.version, title=inc.title, severity=inc.severity,
        state=state_of(s, inc), body=d.body, approved_by=user, approved_at=d.decided_at.isoformat()))
