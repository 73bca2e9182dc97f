"""Slash command parsing and the answers they give. Pure database work: the Slack plumbing is in app.py."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.blocks import incident_line
from opsdraft import events
from opsdraft.events import DraftRequest, IncidentCommand, SimilarRequest, publish
from opsdraft.models import Incident, IncidentStatus, Ticket, TimelineEntry
from opsdraft.privacy import ScopedRedactor, get_redactor
from opsdraft.settings import Settings
from opsdraft.slacktext import escape

INCIDENT_USAGE = (
    "Usage: `/incident declare <title> [sev1-4]` · `/incident list` · `/incident status <id>` · "
    "`/incident timeline <id>` · `/incident postmortem <id>` · `/incident similar <id>` · "
    "`/incident close <id> [note]` · `/incident merge <into id> <other id>` · `/incident split <id> <service>`"
)
DECLARE_USAGE = "Usage: `/incident declare <title> [sev1|sev2|sev3|sev4]`, e.g. `/incident declare Checkout 500s sev2`"
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
TICKET_USAGE = "Usage: `/ticket suggest <ticket id>`"
HELP = (f"opsdraft drafts incident timelines, postmortems and ticket replies for your approval.\n"
        f"{INCIDENT_USAGE}\n{TICKET_USAGE}\n"
        "Each draft has Approve, Edit (saves a new version), Reject (asks why) and Regenerate (optional "
        "instructions). Only configured approvers may use them; an approved draft never changes.")


class UsageError(Exception):
    """Wrong usage: answered ephemerally with the right usage."""


@dataclass(frozen=True)
class Parsed:
    verb: str
    target: str | None = None
    rest: str = ""


def parse_incident(text: str) -> Parsed:
    parts = text.strip().split(maxsplit=2)
    if not parts:
        raise UsageError(INCIDENT_USAGE)
    verb = parts[0].lower()
    if verb == "list":
        return Parsed("list")
    if verb == "declare":
        return _parse_declare(text.strip()[len(parts[0]):].strip())
    if verb not in {"status", "timeline", "postmortem", "similar", "close", "merge", "split"}:
        raise UsageError(f"Unknown subcommand `{escape(verb)}`. {INCIDENT_USAGE}")
    if len(parts) < 2 or not re.fullmatch(r"#?\d{1,9}", parts[1]):
        raise UsageError(f"`/incident {verb}` needs an incident number. {INCIDENT_USAGE}")
    rest = parts[2].strip() if len(parts) > 2 else ""
    if verb == "merge" and not re.fullmatch(r"#?\d{1,9}", rest):
        raise UsageError(f"`/incident merge` needs two incident numbers: the one to keep, then the other. "
                         f"{INCIDENT_USAGE}")
    if verb == "split" and not re.fullmatch(r"[\w.:/-]{1,200}", rest):
        raise UsageError(f"`/incident split` needs an incident number and a service. {INCIDENT_USAGE}")
    return Parsed(verb, parts[1].lstrip("#"), rest.lstrip("#") if verb == "merge" else rest)


def _parse_declare(rest: str) -> Parsed:
    """`declare <title> [sevN]`: the severity is an optional last word; it defaults to sev3."""
    words = rest.split()
    severity = "sev3"
    if words and words[-1].lower() in SEVERITIES:
        severity = words.pop().lower()
    elif words and re.fullmatch(r"(?i)sev\d+", words[-1]):
        raise UsageError(f"Severity must be sev1, sev2, sev3 or sev4, not `{escape(words[-1])}`. {DECLARE_USAGE}")
    title = " ".join(words)
    if len(title) < 3:
        raise UsageError(f"`/incident declare` needs a title. {DECLARE_USAGE}")
    if len(title) > 300:
        raise UsageError(f"The title is {len(title)} characters; keep it under 300. {DECLARE_USAGE}")
    return Parsed("declare", severity, title)


def parse_ticket(text: str) -> Parsed:
    parts = text.strip().split(maxsplit=1)
    if len(parts) != 2 or parts[0].lower() != "suggest":
        raise UsageError(TICKET_USAGE)
    return Parsed("suggest", parts[1].strip())


def _incident(s: Session, ident: str) -> Incident:
    inc = s.get(Incident, int(ident))
    if inc is None:
        raise UsageError(f"Incident #{ident} does not exist. Try `/incident list`.")
    return inc


def run_incident(s: Session, settings: Settings, p: Parsed, user: str, redact=lambda t: t, response_url: str = "",
                 channel: str = "") -> str:
    """`redact` cleans free text (a declared title) before it is queued: the outbox is stored too."""
    if p.verb == "declare":
        title = redact(p.rest)
        publish(s, settings.topics, IncidentCommand(action="declare", actor=user, title=title, severity=p.target))
        return (f"Declaring incident “{escape(title)}” ({p.target}); it will be announced in "
                f"<#{settings.slack_incident_channel}>. Close it with `/incident close <id>` when it is over.")
    if p.verb == "list":
        rows = list(s.scalars(select(Incident).order_by(Incident.status.desc(), Incident.id.desc()).limit(20)))
        return "\n".join(incident_line(i) for i in rows) if rows else "No incidents yet."
    inc = _incident(s, p.target)
    if p.verb == "status":
        alerts = "\n".join(f"• {escape(a.name)} on {escape(a.service)}: {a.status}" for a in inc.alerts)
        return f"{incident_line(inc)}\n{alerts}"
    if p.verb == "close":
        if inc.status != IncidentStatus.open:
            return f"Incident #{inc.id} is already closed."
        # Redacted here, in the incident's own scope (its <PERSON_1> is the same person as in its alerts), before
        # it is queued: the outbox, the topic and the consumer's logs never hold the raw note.
        note = ScopedRedactor(s, get_redactor(settings), settings.redaction_key_bytes(),
                              f"incident:{inc.id}").text(p.rest) if p.rest else ""
        publish(s, settings.topics, IncidentCommand(action="close", incident_id=inc.id, actor=user, note=note))
        return f"Closing incident #{inc.id}; its postmortem draft will follow here for approval."
    if p.verb in ("merge", "split"):
        if inc.status != IncidentStatus.open:
            return f"Incident #{inc.id} is closed; reopen-free edits only apply to open incidents."
        if p.verb == "merge":
            other = _incident(s, p.rest)
            if other.id == inc.id:
                return "An incident cannot be merged into itself."
            publish(s, settings.topics, IncidentCommand(action="merge", incident_id=inc.id, other_id=other.id,
                                                        actor=user))
            return f"Merging incident #{other.id} into #{inc.id}; one postmortem will cover both."
        if p.rest not in (inc.services or [inc.service]):
            has = escape(", ".join(inc.services or [inc.service]))
            return f"Incident #{inc.id} has no service `{escape(p.rest)}` (it has {has})."
        publish(s, settings.topics, IncidentCommand(action="split", incident_id=inc.id, service=p.rest, actor=user))
        return f"Splitting `{escape(p.rest)}` out of incident #{inc.id} into an incident of its own."
    if p.verb == "similar":
        publish(s, settings.topics, SimilarRequest(
            incident_id=inc.id, requested_by=user, response_url=response_url, channel=channel))
        return f"Searching past incidents like #{inc.id}…"
    kind = "timeline" if p.verb == "timeline" else "postmortem"
    events.request_draft(s, settings, DraftRequest(kind=kind, subject_type="incident", subject_id=inc.id,
                                                   requested_by=user))
    n = s.scalar(select(TimelineEntry.id).where(TimelineEntry.incident_id == inc.id).limit(1))
    hint = "" if n else " (it has no timeline entries yet)"
    return f"Drafting the {kind} of incident #{inc.id}{hint}; it will be posted for approval."


def run_ticket(s: Session, settings: Settings, p: Parsed, user: str) -> str:
    cond = Ticket.external_id == p.target
    if p.target.isdigit():
        cond = or_(cond, Ticket.id == int(p.target))
    ticket = s.scalar(select(Ticket).where(cond).limit(1))
    if ticket is None:
        raise UsageError(f"Ticket `{escape(p.target)}` does not exist.")
    events.request_draft(s, settings, DraftRequest(kind="ticket_reply", subject_type="ticket",
                                                   subject_id=ticket.id, requested_by=user))
    return (f"Drafting a reply to ticket {escape(ticket.external_id)}; it will be posted in "
            f"<#{settings.slack_support_channel}>.")
