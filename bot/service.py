"""The database side of a draft's review: approve, edit, reject, regenerate, mark published. Each is a pure
transition inside the caller's transaction, so the state change, the approval row, the audit entry and the
messages it causes (via the outbox) commit together or not at all. Nothing here talks to Slack: flows.py
does, around these. (Named `service` because `opsdraft drafts list` imports `latest_drafts` from here.)"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import followups, updates
from opsdraft import events
from opsdraft.events import DraftReady, TicketReply, publish
from opsdraft.models import Approval, AuditLog, Decision, Draft, DraftKind, DraftStatus, Ticket, utcnow
from opsdraft.privacy import ticket_scope
from opsdraft.settings import Settings


class FlowError(Exception):
    """The action cannot be done; the message is shown to the user."""


def audit(s: Session, actor: str, action: str, object_type: str, object_id: object, **detail) -> None:
    s.add(AuditLog(actor=actor, action=action, object_type=object_type, object_id=str(object_id), detail=detail))


def get_draft(s: Session, draft_id: int) -> Draft:
    d = s.get(Draft, draft_id)
    if d is None:
        raise FlowError(f"Draft #{draft_id} does not exist.")
    return d


def _leave_pending(s: Session, draft_id: int, user: str, status: DraftStatus) -> Draft:
    """Move a pending draft to `status`. The conditional UPDATE makes two concurrent clicks decide once."""
    d = get_draft(s, draft_id)
    if d.status != DraftStatus.pending:
        raise FlowError(f"Draft #{draft_id} is already {d.status}.")
    now = utcnow()
    changed = s.execute(update(Draft).where(Draft.id == draft_id, Draft.status == DraftStatus.pending)
                        .values(status=status, decided_by=user, decided_at=now)).rowcount
    if changed != 1:
        raise FlowError(f"Draft #{draft_id} was decided by someone else just now.")
    s.refresh(d)
    return d


def approve(s: Session, settings: Settings, draft_id: int, user: str) -> Draft:
    d = _leave_pending(s, draft_id, user, DraftStatus.approved)
    s.add(Approval(draft_id=d.id, user_id=user, decision=Decision.approved))
    audit(s, user, "draft.approved", "draft", d.id, kind=d.kind, version=d.version)
    if d.kind == DraftKind.ticket_reply:
        ticket = s.get(Ticket, d.subject_id)
        publish(s, settings.topics, TicketReply(
            ticket_id=ticket.external_id, draft_id=d.id, version=d.version, body=d.body, sources=d.citations or [],
            approved_by=user, approved_at=d.decided_at.isoformat(),
            # The relay puts the customer's name back from this ticket's own sealed placeholders as it publishes.
            scope=ticket_scope(ticket.external_id)))
        ticket.status = "answered"
        events.ticket_resolved(s, settings, ticket)
        # The outbox row commits with this transaction, so the reply is as good as sent.
        mark_published(s, d, user)
    elif d.kind == DraftKind.status_update:
        updates.approved(s, settings, d, user)  # posted to the stakeholder channel by flows.publish
    elif d.kind == DraftKind.postmortem:
        followups.approved(s, settings, d)
    return d


def mark_published(s: Session, d: Draft, actor: str) -> Draft:
    """Final and immutable from here on. Postmortems and timelines get here once posted to Slack."""
    d.status = DraftStatus.published
    audit(s, actor, "draft.published", "draft", d.id, kind=d.kind)
    return d


def approved_unposted(s: Session, approved_before: datetime) -> list[Draft]:
    """Postmortems and timelines approved before `approved_before` but never posted as final (ticket replies are
    published as they are approved, so they never wait here)."""
    return list(s.scalars(select(Draft).where(
        Draft.status == DraftStatus.approved, Draft.kind != DraftKind.ticket_reply,
        Draft.decided_at <= approved_before,
    ).order_by(Draft.id)))


def reject(s: Session, draft_id: int, user: str, reason: str) -> Draft:
    if not reason.strip():
        raise FlowError("A reason is required to reject a draft.")
    d = _leave_pending(s, draft_id, user, DraftStatus.rejected)
    s.add(Approval(draft_id=d.id, user_id=user, decision=Decision.rejected, reason=reason))
    audit(s, user, "draft.rejected", "draft", d.id, reason=reason)
    return d


def edit(s: Session, settings: Settings, draft_id: int, user: str, body: str) -> Draft:
    """An edit makes a new pending version; the old one is superseded, never changed."""
    if not body.strip():
        raise FlowError("The edited draft is empty.")
    old = _leave_pending(s, draft_id, user, DraftStatus.superseded)
    new = Draft(request_id=f"edit:{old.id}:{uuid.uuid4().hex}", kind=old.kind, subject_type=old.subject_type,
                subject_id=old.subject_id, version=old.version + 1, parent_id=old.id, title=old.title,
                body=body, sources=old.sources, notes=[*old.notes, f"Edited by <@{user}> from v{old.version}."],
                model=old.model,
                # a sentence keeps its sources only while the approver left it as it was
                citations=[c for c in old.citations or [] if c.get("sentence") and c["sentence"] in body])
    s.add(new)
    s.flush()
    s.add(Approval(draft_id=old.id, user_id=user, decision=Decision.edited))
    audit(s, user, "draft.edited", "draft", old.id, new_draft_id=new.id, new_version=new.version)
    publish(s, settings.topics, DraftReady(draft_id=new.id, kind=new.kind))
    return new


def regenerate(s: Session, settings: Settings, draft_id: int, user: str, instructions: str) -> Draft:
    """Supersede the draft now and ask the summarizer for its next version. Superseding at once (rather
    than when the new version arrives) means nobody approves text a reviewer has just asked to replace, and
    the conditional UPDATE makes a double submit queue one request; the summarizer always answers (with a
    deterministic draft if the model fails), so the successor does arrive."""
    old = _leave_pending(s, draft_id, user, DraftStatus.superseded)
    s.add(Approval(draft_id=old.id, user_id=user, decision=Decision.regenerated, reason=instructions or None))
    audit(s, user, "draft.regenerate_requested", "draft", old.id, version=old.version, instructions=instructions)
    if old.kind == DraftKind.status_update:  # drafted by the bot from the record, not by the summarizer
        updates.draft_update(s, settings, old.subject_id, user, parent=old, instructions=instructions)
        return old
    events.request_draft(s, settings, events.DraftRequest(
        request_id=f"regenerate:{old.id}", kind=old.kind, subject_type=old.subject_type, subject_id=old.subject_id,
        requested_by=user, instructions=instructions, parent_draft_id=old.id))
    return old


def latest_drafts(s: Session, limit: int = 20) -> list[Draft]:
    return list(s.scalars(select(Draft).order_by(Draft.id.desc()).limit(limit)))
