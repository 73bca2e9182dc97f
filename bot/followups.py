"""Follow-ups: the action items of an approved postmortem, produced to `follow-ups` (opsdraft.events.FollowUp)
for a Jira or Linear bridge, and listed by `/incident followups <id>`. Read from the approved text itself (the
"## Action items" section: a Markdown table Action | Owner | Due, or a bullet list), so what is listed is what
the approver saw, edits included."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import shown
from opsdraft.events import FollowUp, publish
from opsdraft.models import Draft, DraftKind, DraftStatus
from opsdraft.settings import Settings

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def action_items(body: str) -> list[tuple[str, str, str]]:
    """(title, owner, due) of each action item in a postmortem's text."""
    m = re.search(r"(?im)^#+\s*action items\s*$", body)
    if not m:
        return []
    section = re.split(r"(?m)^#+\s", body[m.end():], maxsplit=1)[0]
    out = []
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not cells or not cells[0] or set(cells[0]) <= set("-: ") or cells[0].lower() == "action":
                continue  # the header and its rule
            owner = cells[1] if len(cells) > 1 else ""
            due = cells[2] if len(cells) > 2 and DATE.fullmatch(cells[2]) else ""
            out.append((cells[0][:500], owner[:200], due))
        elif re.match(r"[-*•]\s+\S", line) or re.match(r"\d+[.)]\s+\S", line):
            out.append((re.sub(r"^([-*•]|\d+[.)])\s+", "", line)[:500], "", ""))
    return out


def approved_postmortem(s: Session, incident_id: int) -> Draft | None:
    return s.scalar(select(Draft).where(
        Draft.kind == DraftKind.postmortem, Draft.subject_type == "incident", Draft.subject_id == incident_id,
        Draft.status.in_([DraftStatus.approved, DraftStatus.published])).order_by(Draft.id.desc()).limit(1))


def items_of(d: Draft) -> list[FollowUp]:
    return [FollowUp(key=f"incident:{d.subject_id}:{n}", incident_id=d.subject_id, title=title, owner=owner,
                     due=due, postmortem_draft_id=d.id)
            for n, (title, owner, due) in enumerate(action_items(d.body), 1)]


def approved(s: Session, settings: Settings, d: Draft) -> int:
    """Queue the approved postmortem's follow-ups, in the approval's transaction."""
    items = items_of(d)
    for item in items:
        publish(s, settings.topics, item)
    return len(items)


def listing(s: Session, incident_id: int) -> str:
    d = approved_postmortem(s, incident_id)
    if d is None:
        return f"Incident #{incident_id} has no approved postmortem yet, so no follow-ups."
    items = items_of(d)
    if not items:
        return f"The approved postmortem of incident #{incident_id} lists no action items."
    lines = [f"Follow-ups of incident #{incident_id} (postmortem draft #{d.id}):"]
    for f in items:
        extra = ", ".join(p for p in (f"owner {shown(f.owner)}" if f.owner else "", f"due {f.due}" if f.due else "")
                          if p)
        lines.append(f"• {shown(f.title)}" + (f" ({extra})" if extra else ""))
    return "\n".join(lines)
