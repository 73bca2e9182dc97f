"""The slash commands of a live incident: `/incident lead @user`, `role <name> @user`, `severity <sev>`,
`status investigating|identified|monitoring|resolved`, `note <text>`, `update` and `followups <id>`. Each takes
an optional incident number; without one it means the incident whose channel it is typed in. Every change is a
timeline entry with who and when, redacted before it is stored (conversation.add_entry). Pure database work,
like commands.py; app.py tries these first and falls back to commands.parse_incident."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot import followups, updates
from bot.channels import STATES, channel_of, incident_of_channel
from bot.commands import SEVERITIES, UsageError
from bot.conversation import add_entry
from opsdraft.models import Incident, IncidentStatus
from opsdraft.settings import Settings
from redaction import Redactor

VERBS = ("lead", "role", "severity", "status", "note", "update", "followups")
LIVE_USAGE = ("`/incident lead [id] @user` · `/incident role [id] <role> @user` · `/incident severity [id] sev1-4` · "
              "`/incident status [id] investigating|identified|monitoring|resolved` · `/incident note [id] <text>` · "
              "`/incident update [id]` · `/incident followups <id>` (the id may be left out in an incident's channel)")
MENTION = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>")


@dataclass(frozen=True)
class Live:
    verb: str
    incident_id: int | None
    args: tuple[str, ...] = ()


def parse_live(text: str, roles: list[str]) -> Live | None:
    """A live-incident command, or None when `text` is another /incident subcommand (e.g. `status 42`)."""
    words = text.strip().split()
    if not words or words[0].lower() not in VERBS:
        return None
    verb, rest = words[0].lower(), words[1:]
    ident = None
    if rest and re.fullmatch(r"#?\d{1,9}", rest[0]):
        ident, rest = int(rest[0].lstrip("#")), rest[1:]
    if verb == "status":
        if not rest:
            return None  # `/incident status 42` shows an incident (commands.py)
        if len(rest) != 1 or rest[0].lower() not in STATES:
            raise UsageError(f"Status must be one of {', '.join(STATES)}. {LIVE_USAGE}")
        return Live(verb, ident, (rest[0].lower(),))
    if verb == "lead":
        if len(rest) != 1 or not MENTION.fullmatch(rest[0]):
            raise UsageError(f"`/incident lead` needs one @mention. {LIVE_USAGE}")
        return Live(verb, ident, (MENTION.fullmatch(rest[0])[1],))
    if verb == "role":
        if len(rest) != 2 or rest[0].lower() not in roles or not MENTION.fullmatch(rest[1]):
            raise UsageError(f"`/incident role` needs a role ({', '.join(roles) or 'none configured'}) and one "
                             f"@mention. {LIVE_USAGE}")
        return Live(verb, ident, (rest[0].lower(), MENTION.fullmatch(rest[1])[1]))
    if verb == "severity":
        if len(rest) != 1 or rest[0].lower() not in SEVERITIES:
            raise UsageError(f"Severity must be sev1, sev2, sev3 or sev4. {LIVE_USAGE}")
        return Live(verb, ident, (rest[0].lower(),))
    if verb == "note":
        note = text.strip().split(maxsplit=2 if ident is not None else 1)[-1] if rest else ""
        if len(note.strip()) < 2 or len(note) > 3000:
            raise UsageError(f"`/incident note` needs the note's text (under 3,000 characters). {LIVE_USAGE}")
        return Live(verb, ident, (note.strip(),))
    if rest:
        raise UsageError(f"`/incident {verb}` takes only an incident number. {LIVE_USAGE}")
    if verb == "followups" and ident is None:
        return Live(verb, None)  # resolved from the channel, or answered with the usage
    return Live(verb, ident)


def _target(s: Session, p: Live, channel: str) -> Incident:
    ident = p.incident_id
    if ident is None:
        row = incident_of_channel(s, channel) if channel else None
        if row is None:
            raise UsageError(f"Say which incident (e.g. `/incident {p.verb} 42 …`) outside its channel. {LIVE_USAGE}")
        ident = row.incident_id
    inc = s.get(Incident, ident)
    if inc is None:
        raise UsageError(f"Incident #{ident} does not exist. Try `/incident list`.")
    return inc


def run_live(s: Session, settings: Settings, redactor: Redactor, p: Live, user: str, channel: str) -> str:
    inc = _target(s, p, channel)
    if p.verb == "followups":
        return followups.listing(s, inc.id)
    if p.verb == "update":
        d = updates.draft_update(s, settings, inc.id, user)
        return f"Drafting status update #{d.id} for incident #{inc.id}; it will be posted for approval."
    if inc.status != IncidentStatus.open and p.verb != "note":
        raise UsageError(f"Incident #{inc.id} is closed.")
    row = channel_of(s, inc.id)
    who = f"slack:{user}"
    if p.verb == "lead":
        if row is not None:
            row.lead = p.args[0]
        add_entry(s, settings, redactor, inc.id, "lead", f"<@{user}> made <@{p.args[0]}> incident lead", who)
        return f"<@{p.args[0]}> leads incident #{inc.id}."
    if p.verb == "role":
        if row is not None:
            row.roles = {**row.roles, p.args[0]: p.args[1]}
        add_entry(s, settings, redactor, inc.id, "role", f"<@{user}> gave the {p.args[0]} role to <@{p.args[1]}>", who)
        return f"<@{p.args[1]}> is {p.args[0]} for incident #{inc.id}."
    if p.verb == "severity":
        before, inc.severity = inc.severity, p.args[0]
        add_entry(s, settings, redactor, inc.id, "severity", f"<@{user}> changed severity {before} → {p.args[0]}",
                  who)
        return f"Incident #{inc.id} is now {p.args[0]}."
    if p.verb == "status":
        return set_state(s, settings, redactor, inc, user, p.args[0])
    add_entry(s, settings, redactor, inc.id, "note", f"Note by <@{user}>: {p.args[0]}", who)
    return f"Noted on incident #{inc.id}'s timeline."


def set_state(s: Session, settings: Settings, redactor: Redactor, inc: Incident, user: str, state: str) -> str:
    """The stated status (not the incident's open/closed: `/incident close` ends it and starts the postmortem)."""
    row = channel_of(s, inc.id)
    if row is not None:
        row.state = state
    add_entry(s, settings, redactor, inc.id, "status", f"<@{user}> set status to {state}", f"slack:{user}")
    hint = " Close it with `/incident close` when it is over." if state == "resolved" else ""
    return f"Incident #{inc.id} is {state}.{hint}"
