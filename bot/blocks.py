"""Block Kit for drafts and incidents, kept within Slack's limits (50 blocks, 3,000 chars per section)."""

from __future__ import annotations

import re
from typing import Any

from bot.ids import EDIT_BODY, REGENERATE_INSTRUCTIONS, REJECT_REASON, ActionId, CallbackId
from bot.replyblocks import reply_source_blocks
from opsdraft.models import Draft, Incident
from opsdraft.slacktext import escape, plain

SECTION_LIMIT = 3000
MAX_BODY_SECTIONS = 40  # leaves room for header, context and actions under Slack's 50
KIND_LABEL = {"timeline": "Incident timeline", "postmortem": "Postmortem", "ticket_reply": "Ticket reply",
              "status_update": "Status update"}


def chunk_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split on paragraph, then line, boundaries so no section exceeds Slack's limit."""
    chunks, current = [], ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:  # a single enormous line: hard split
            if current:
                chunks.append(current)
                current = ""
            cut = _entity_safe_cut(line, limit)
            chunks.append(line[:cut])
            line = line[cut:]
        if len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current.strip():
        chunks.append(current)
    return chunks or [" "]


def _entity_safe_cut(line: str, limit: int) -> int:
    """Text is escaped before it is chunked: never cut inside an entity ("&am" + "p;" would show as typed)."""
    amp = line.rfind("&", max(0, limit - 5), limit)
    return amp if amp > 0 and ";" not in line[amp:limit] else limit


# Notes we write ourselves start with the approver who acted, as a mention; what follows may be typed input.
_OUR_NOTE = re.compile(r"(?:Edited|Regenerated) by <@[UW][A-Z0-9]{2,20}>")


def _note(note: str) -> str:
    m = _OUR_NOTE.match(note)
    return note[:m.end()] + escape(note[m.end():]) if m else escape(note)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(p, 2000)} for p in parts if p]}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    b = {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id, "value": value}
    if style:
        b["style"] = style
    return b


def draft_blocks(d: Draft) -> list[dict[str, Any]]:
    label = KIND_LABEL.get(d.kind, d.kind)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{label} draft #{d.id} (v{d.version})"[:150]}},
        # The title says what the draft is about (a ticket reply's names the ticket and its subject).
        _context(f"*Status:* {d.status}", f"*Model:* {escape(d.model)}",
                 f"*For:* {d.subject_type} {d.subject_id}: {escape(_cut(d.title, 200))}"),
    ]
    if d.notes:  # one block (a context holds up to 10 elements) so the body keeps its 40 sections
        blocks.append(_context(*(f":warning: {_note(n)}" for n in d.notes[:10])))
    claims = d.unsupported_claims or []
    if claims:
        listed = "; ".join(f"“{escape(c)}”" for c in claims)
        n = len(claims)
        blocks.append(_context(f":mag: {n} claim{'s' if n != 1 else ''} not found in the sources: {listed}"))
    body = chunk_text(escape(d.body))
    if len(body) > MAX_BODY_SECTIONS:
        body = body[:MAX_BODY_SECTIONS]
        note = f"\n… (truncated; full text: `opsdraft drafts show {d.id}`)"
        body[-1] = body[-1][:SECTION_LIMIT - len(note)] + note
    blocks += [_section(c) for c in body]
    blocks += reply_source_blocks(d)  # a ticket reply's footnotes: which sentence rests on which source
    if d.sources:
        blocks.append(_context("*Sources:* " + ", ".join(f"`{escape(s)}`" for s in d.sources[:20])))
    blocks.append({"type": "divider"})
    if d.status == "pending":
        v = str(d.id)
        blocks.append({"type": "actions", "block_id": f"draft_actions:{d.id}", "elements": [
            _button("Approve", ActionId.draft_approve, v, "primary"),
            _button("Edit", ActionId.draft_edit, v),
            _button("Reject", ActionId.draft_reject, v, "danger"),
            _button("Regenerate", ActionId.draft_regenerate, v),
        ]})
    else:
        who = f" by <@{d.decided_by}>" if d.decided_by else ""
        when = f" at {d.decided_at:%Y-%m-%d %H:%M UTC}" if d.decided_at else ""
        blocks.append(_context(f"*{d.status.capitalize()}*{who}{when}"))
    return blocks


def draft_fallback_text(d: Draft) -> str:
    return f"{KIND_LABEL.get(d.kind, d.kind)} draft #{d.id} v{d.version} ({d.status})"


PUBLISH_SECTIONS = 45


def fits_one_message(d: Draft) -> bool:
    return len(chunk_text(escape(d.body))) <= PUBLISH_SECTIONS


def published_blocks(d: Draft) -> list[dict[str, Any]]:
    """The final text in full, or (over the block limit) its start, with the whole attached as Markdown."""
    label = KIND_LABEL.get(d.kind, d.kind)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": plain(f"{label} (final) — {d.title}")[:150]}}]
    chunks = chunk_text(escape(d.body))
    if len(chunks) <= PUBLISH_SECTIONS:
        blocks += [_section(c) for c in chunks]
    else:
        blocks += [_section(c) for c in chunks[:3]]
        blocks.append(_context(f":page_facing_up: {len(d.body):,} characters: the full text is attached in the "
                               f"thread as `{markdown_filename(d)}`."))
    blocks.append(_context(f"Approved by <@{d.decided_by}>" if d.decided_by else "Approved"))
    return blocks


def markdown_filename(d: Draft) -> str:
    return f"{d.kind}-{d.subject_type}-{d.subject_id}-v{d.version}.md"


def draft_markdown(d: Draft) -> str:
    """The exportable form of a draft: the same Markdown `opsdraft drafts show` prints, plus its sources."""
    state = "final" if d.status in {"approved", "published"} else d.status
    lines = [f"# {d.title}", "", f"_{d.kind} v{d.version} · {state} · {d.model}_", ""]
    lines += [f"> {n}" for n in d.notes or []]
    lines += ["", d.body.rstrip(), ""]
    if d.sources:
        lines += ["## Sources", "", *(f"- `{s}`" for s in d.sources), ""]
    if d.decided_by:
        lines.append(f"Approved by {d.decided_by}" + (f" at {d.decided_at:%Y-%m-%d %H:%M UTC}" if d.decided_at else ""))
    return "\n".join(lines) + "\n"


def incident_line(i: Incident) -> str:
    closed = f", closed {i.closed_at:%H:%M UTC}" if i.closed_at else ""
    return f"*#{i.id}* {escape(i.title)} — {i.severity}, {i.status} (opened {i.opened_at:%Y-%m-%d %H:%M UTC}{closed})"


def edit_modal(d: Draft) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": CallbackId.draft_edit_submit, "private_metadata": str(d.id),
        "title": {"type": "plain_text", "text": f"Edit draft #{d.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Save new version"[:24]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": EDIT_BODY.block_id,
            "label": {"type": "plain_text", "text": "Draft text"},
            "element": {"type": "plain_text_input", "action_id": EDIT_BODY.action_id, "multiline": True,
                        "initial_value": plain(d.body)[:3000], "max_length": 3000},
        }],
    }


def regenerate_modal(d: Draft) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": CallbackId.draft_regenerate_submit, "private_metadata": str(d.id),
        "title": {"type": "plain_text", "text": f"Regenerate #{d.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Regenerate"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _context(f"v{d.version} will be superseded now; v{d.version + 1} is drafted and posted for approval."),
            {"type": "input", "block_id": REGENERATE_INSTRUCTIONS.block_id, "optional": True,
             "label": {"type": "plain_text", "text": "Instructions for the new version (optional)"},
             "element": {"type": "plain_text_input", "action_id": REGENERATE_INSTRUCTIONS.action_id,
                         "multiline": True, "max_length": 1000,
                         "placeholder": {"type": "plain_text", "text": "e.g. shorter; mention the rollback"}}},
        ],
    }


def reject_modal(d: Draft) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": CallbackId.draft_reject_submit, "private_metadata": str(d.id),
        "title": {"type": "plain_text", "text": f"Reject draft #{d.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": REJECT_REASON.block_id,
            "label": {"type": "plain_text", "text": "Why is this draft rejected?"},
            "element": {"type": "plain_text_input", "action_id": REJECT_REASON.action_id, "multiline": True,
                        "min_length": 3, "max_length": 2000},
        }],
    }
