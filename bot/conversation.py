"""The conversation as a source: what people say and do in an incident's channel goes on its timeline, redacted
before it is stored, with who said it and when (the message's own Slack timestamp).

Captured messages are timeline entries of kind "message" (context, not key events); a :pushpin: reaction or a
pin turns one into kind "pinned", a key event at the time it was posted, which the analysis and the postmortem
use and the grounding checker accepts as a source ("slack:<channel>:<ts>"). Edits replace the stored text and
deletions remove the entry. Notes, roles, severity and status set by command are entries of their own kinds.
Every function is a pure database step in the caller's transaction; app.py's listeners call them after the ack."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import incident_of_channel
from opsdraft.models import TimelineEntry, utcnow
from opsdraft.privacy import ScopedRedactor
from opsdraft.settings import Settings
from redaction import Redactor

PIN_REACTIONS = {"pushpin", "round_pushpin"}
CAPTURED_SUBTYPES = {None, "thread_broadcast", "file_share", "me_message"}
MAX_TEXT = 4000  # a long message is kept whole up to this; the timeline is not an archive of pastes


def slack_time(ts: str) -> datetime:
    """A Slack message timestamp ("1700000000.000100") as the UTC time it was posted."""
    if not re.fullmatch(r"\d{9,11}\.\d{1,6}", ts or ""):
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return datetime.fromtimestamp(float(ts), UTC)


def message_ref(channel: str, ts: str) -> str:
    return f"slack:{channel}:{ts}"


def add_entry(s: Session, settings: Settings, redactor: Redactor, incident_id: int, kind: str, text: str,
              ref: str, at: datetime | None = None) -> TimelineEntry:
    """One human entry, its text redacted with the incident's placeholders (the same <PERSON_1> as its logs)."""
    scoped = ScopedRedactor(s, redactor, settings.redaction_key_bytes(), f"incident:{incident_id}")
    entry = TimelineEntry(incident_id=incident_id, at=at or utcnow(), kind=kind,
                          text=scoped.text(text[:MAX_TEXT]), source_ref=ref[:100])
    s.add(entry)
    return entry


def _entry(s: Session, incident_id: int, ref: str) -> TimelineEntry | None:
    return s.scalar(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id,
                                                TimelineEntry.source_ref == ref).limit(1))


def on_message(s: Session, settings: Settings, redactor: Redactor, event: dict) -> str:
    """A message event in some channel: returns what was done ("captured", "edited", "deleted", "ignored",
    "duplicate"), which the tests and the logs read."""
    channel = event.get("channel", "")
    row = incident_of_channel(s, channel) if channel else None
    if row is None:
        return "ignored"  # not an incident's channel: never stored
    subtype = event.get("subtype")
    if subtype == "message_changed":
        msg = event.get("message") or {}
        entry = _entry(s, row.incident_id, message_ref(channel, msg.get("ts", "")))
        if entry is None:
            return "ignored"
        scoped = ScopedRedactor(s, redactor, settings.redaction_key_bytes(), f"incident:{row.incident_id}")
        entry.text = scoped.text(_said(msg.get("user", ""), msg.get("text", ""))[:MAX_TEXT])
        return "edited"
    if subtype == "message_deleted":
        entry = _entry(s, row.incident_id, message_ref(channel, event.get("deleted_ts", "")))
        if entry is None:
            return "ignored"
        s.delete(entry)
        return "deleted"
    if subtype not in CAPTURED_SUBTYPES or event.get("bot_id") or not event.get("user"):
        return "ignored"  # joins, topic changes, and the bot's own posts are not the conversation
    ref = message_ref(channel, event.get("ts", ""))
    if _entry(s, row.incident_id, ref) is not None:
        return "duplicate"  # a redelivered event (Socket Mode reconnect) or one replayed by hand
    add_entry(s, settings, redactor, row.incident_id, "message", _said(event["user"], event.get("text", "")), ref,
              slack_time(event["ts"]))
    return "captured"


def _said(user: str, text: str) -> str:
    return f"<@{user}>: {text}" if user else text


def on_pin(s: Session, settings: Settings, redactor: Redactor, channel: str, ts: str, by: str,
           message: dict | None = None) -> str:
    """A :pushpin: or a pin on a message: it becomes a key entry at its posting time. Returns "pinned",
    "ignored" (not an incident channel), or "missing" when the message was never captured and `message`
    (its text, fetched by the caller from Slack) was not given."""
    row = incident_of_channel(s, channel)
    if row is None or (row.summary_ts and ts == row.summary_ts):
        return "ignored"  # the bot's own pinned summary is not a human action
    ref = message_ref(channel, ts)
    entry = _entry(s, row.incident_id, ref)
    if entry is not None and entry.kind == "pinned":
        return "duplicate"  # pinned and 📌'd, or a redelivered event: one key entry, one record of who pinned
    if entry is None:
        if message is None:
            return "missing"
        if message.get("bot_id") or not message.get("user"):
            return "ignored"
        entry = add_entry(s, settings, redactor, row.incident_id, "pinned",
                          _said(message["user"], message.get("text", "")), ref, slack_time(ts))
    entry.kind = "pinned"
    s.add(TimelineEntry(incident_id=row.incident_id, at=utcnow(), kind="pin_added", text=f"<@{by}> pinned {ref}",
                        source_ref=f"slackpin:{channel}:{ts}"[:100]))
    return "pinned"
