"""A channel per incident (OPSDRAFT_SLACK_CHANNEL_PER_INCIDENT): created when the incident opens, with its lead,
the configured responders and the bot in it, announced in the incidents channel, home of the incident's
drafts, and archived once its postmortem is posted. Off, everything stays in threads of the incidents channel
as before. The database side is here; the bot's consumer (worker.py) and flows.py call in."""

from __future__ import annotations

import logging
import re

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.ids import ActionId
from opsdraft.models import Draft, Incident, IncidentChannel, IncidentStatus, TimelineEntry, utcnow
from opsdraft.settings import Settings
from opsdraft.slacktext import escape

log = logging.getLogger(__name__)
NAME_MAX = 80  # Slack's limit for a channel name
STATES = ("investigating", "identified", "monitoring", "resolved")


def shown(text: str) -> str:
    """Stored text (redacted, typed by people) for Slack mrkdwn: escaped (no <!channel>, no disguised links),
    but user mentions stay mentions: "<@U123>: rolled back" is who said it, and a user mention broadcasts nothing."""
    return re.sub(r"&lt;@([UW][A-Z0-9]{2,20})&gt;", r"<@\1>", escape(text))


def slug(text: str) -> str:
    """Slack's channel name rules: lowercase letters, digits, hyphens and underscores only."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_-]+", "-", text.lower())).strip("-_")


def channel_name(pattern: str, inc: Incident, attempt: int = 0) -> str:
    """The incident's channel name from the pattern, e.g. inc-42-checkout-higherrorrate; `attempt` > 0 adds a
    suffix when the name is taken (an old channel of a wiped database, or someone's own)."""
    name = slug(pattern.format(id=inc.id, service=inc.service or "", title=inc.title or ""))
    suffix = f"-{attempt + 1}" if attempt else ""
    return (name[:NAME_MAX - len(suffix)].rstrip("-_") + suffix) or f"inc-{inc.id}{suffix}"


def channel_of(s: Session, incident_id: int) -> IncidentChannel | None:
    return s.get(IncidentChannel, incident_id)


def incident_of_channel(s: Session, channel_id: str) -> IncidentChannel | None:
    return s.scalar(select(IncidentChannel).where(IncidentChannel.channel_id == channel_id))


def draft_channel(s: Session, settings: Settings, d: Draft) -> str:
    """Where a draft is posted for approval: its incident's open channel in channel mode, else as before."""
    if d.kind == "ticket_reply":
        return settings.slack_support_channel
    row = channel_of(s, d.subject_id) if settings.slack_channel_per_incident else None
    return row.channel_id if row is not None and row.archived_at is None else settings.slack_incident_channel


def _declarer(s: Session, inc: Incident) -> str | None:
    """Who declared an incident by hand (its "opened" entry cites slack:<user>): its first lead."""
    ref = s.scalar(select(TimelineEntry.source_ref).where(
        TimelineEntry.incident_id == inc.id, TimelineEntry.kind == "opened").limit(1))
    user = ref.split(":", 1)[1] if ref and ref.startswith("slack:") else ""
    return user if re.fullmatch(r"[UW][A-Z0-9]+", user) else None


def _invitees(client: WebClient, settings: Settings, lead: str | None) -> list[str]:
    users: list[str] = [lead] if lead else []
    for ident in (i.strip() for i in settings.slack_incident_responders.split(",")):
        if ident.startswith("S"):  # an on-call user group: its members now
            try:
                users += client.usergroups_users_list(usergroup=ident).get("users") or []
            except SlackApiError as exc:
                log.warning("could not read responder group %s: %s", ident, exc.response.get("error"))
        elif ident:
            users.append(ident)
    return list(dict.fromkeys(users))


def invite(client: WebClient, channel: str, users: list[str]) -> None:
    """Invite each user; one already there (already_in_channel) or gone (user_not_found) stops nobody else."""
    for user in users:
        try:
            client.conversations_invite(channel=channel, users=user)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("already_in_channel", "cant_invite_self"):
                log.warning("could not invite %s to %s: %s", user, channel, exc.response.get("error"))


def summary_blocks(inc: Incident, row: IncidentChannel) -> list[dict]:
    """The pinned summary at the top of the channel, with buttons for the common changes."""
    lead = f"<@{row.lead}>" if row.lead else "nobody yet (`/incident lead @someone`)"
    roles = ", ".join(f"{k}: <@{v}>" for k, v in sorted(row.roles.items())) or "none"
    text = (f"*Incident #{inc.id}: {escape(inc.title)}*\n"
            f"Severity *{inc.severity}* · status *{row.state}* · lead {lead}\n"
            f"Roles: {roles}\nWhat you say here is captured (redacted) on the incident's timeline; "
            f"react with :pushpin: or pin a message to make it a key event.")
    buttons = [{"type": "button", "text": {"type": "plain_text", "text": state.capitalize()},
                "action_id": ActionId.incident_state, "value": f"{inc.id}:{state}"}
               for state in STATES if state != row.state]
    buttons.append({"type": "button", "text": {"type": "plain_text", "text": "Draft a status update"},
                    "action_id": ActionId.incident_update, "value": str(inc.id)})
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {"type": "actions", "block_id": f"incident_actions:{inc.id}", "elements": buttons}]


def open_channel(client: WebClient, s: Session, settings: Settings, inc: Incident) -> IncidentChannel:
    """Create, fill, pin and announce the incident's channel; once (a redelivered event finds the row)."""
    row = channel_of(s, inc.id)
    if row is not None:
        return row
    for attempt in range(5):
        name = channel_name(settings.slack_channel_name, inc, attempt)
        try:
            created = client.conversations_create(name=name, is_private=False)
            break
        except SlackApiError as exc:
            if exc.response.get("error") != "name_taken" or attempt == 4:
                raise
    channel = created["channel"]["id"]
    row = IncidentChannel(incident_id=inc.id, channel_id=channel, name=created["channel"]["name"],
                          lead=_declarer(s, inc), roles={}, state="investigating")
    s.add(row)
    s.flush()  # the row commits with the consumer's offset: a crash after this recreates nothing
    invite(client, channel, _invitees(client, settings, row.lead))
    posted = client.chat_postMessage(channel=channel, text=f"Incident #{inc.id}: {escape(inc.title)}",
                                     blocks=summary_blocks(inc, row))
    row.summary_ts = posted["ts"]
    try:
        client.pins_add(channel=channel, timestamp=posted["ts"])
    except SlackApiError as exc:  # a summary not pinned is still a summary
        log.warning("could not pin the summary of incident #%s: %s", inc.id, exc.response.get("error"))
    client.chat_postMessage(channel=settings.slack_incident_channel,
                            text=f":rotating_light: Incident #{inc.id} ({inc.severity}): {escape(inc.title)} — "
                                 f"join <#{channel}>")
    return row


async def refresh_summary(client: AsyncWebClient, inc: Incident, row: IncidentChannel) -> None:
    if not row.summary_ts or row.archived_at:
        return
    try:
        await client.chat_update(channel=row.channel_id, ts=row.summary_ts,
                                 text=f"Incident #{inc.id}: {escape(inc.title)}",
                                 blocks=summary_blocks(inc, row))
    except SlackApiError as exc:
        log.warning("could not update the summary of incident #%s: %s", inc.id, exc.response.get("error"))


def to_archive(s: Session, settings: Settings, d: Draft) -> str | None:
    """The channel to archive now that draft `d` is posted: a closed incident's, after its postmortem."""
    if not (settings.slack_channel_per_incident and settings.slack_archive_on_close) or d.kind != "postmortem":
        return None
    row, inc = channel_of(s, d.subject_id), s.get(Incident, d.subject_id)
    if row is None or row.archived_at or inc is None or inc.status != IncidentStatus.closed:
        return None
    return row.channel_id


async def archive(client: AsyncWebClient, db_call, channel: str) -> None:
    """Archive the channel and note it; `db_call(fn)` runs fn(session) in a transaction off the loop."""
    try:
        await client.conversations_archive(channel=channel)
    except SlackApiError as exc:
        if exc.response.get("error") != "already_archived":
            log.warning("could not archive %s: %s", channel, exc.response.get("error"))
            return

    def mark(s: Session) -> None:
        row = incident_of_channel(s, channel)
        if row is not None:
            row.archived_at = utcnow()

    await db_call(mark)
