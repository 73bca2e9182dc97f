"""Block Kit for drafts and incidents, kept within Slack's limits (50 blocks, 3,000 chars per section)."""

from __future__ import annotations

from typing import Any

from opsdraft.models import Draft, Incident

SECTION_LIMIT = 3000
MAX_BODY_SECTIONS = 40  # leaves room for header, context and actions under Slack's 50
KIND_LABEL = {"timeline": "Incident timeline", "postmortem": "Postmortem", "ticket_reply": "Ticket reply"}


def chunk_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split on paragraph, then line, boundaries so no section exceeds Slack's limit."""
    chunks, current = [], ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:  # a single enormous line: hard split
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current.strip():
        chunks.append(current)
    return chunks or [" "]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": p[:2000]} for p in parts if p]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    b = {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id, "value": value}
    if style:
        b["style"] = style
    return b


def draft_blocks(d: Draft) -> list[dict[str, Any]]:
    label = KIND_LABEL.get(d.kind, d.kind)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{label} draft #{d.id} (v{d.version})"[:150]}},
        _context(f"*Status:* {d.status}", f"*Model:* {d.model}", f"*For:* {d.subject_type} {d.subject_id}"),
    ]
    for note in d.notes or []:
        blocks.append(_context(f":warning: {note}"))
    body = chunk_text(d.body)
    if len(body) > MAX_BODY_SECTIONS:
        body = body[:MAX_BODY_SECTIONS]
        body[-1] += f"\n… (truncated; full text: `opsdraft drafts show {d.id}`)"
    blocks += [_section(c) for c in body]
    if d.sources:
        blocks.append(_context("*Sources:* " + ", ".join(f"`{s}`" for s in d.sources[:20])))
    blocks.append({"type": "divider"})
    if d.status == "pending":
        v = str(d.id)
        blocks.append({"type": "actions", "block_id": f"draft_actions:{d.id}", "elements": [
            _button("Approve", "draft_approve", v, "primary"),
            _button("Edit", "draft_edit", v),
            _button("Reject", "draft_reject", v, "danger"),
        ]})
    else:
        who = f" by <@{d.decided_by}>" if d.decided_by else ""
        when = f" at {d.decided_at:%Y-%m-%d %H:%M UTC}" if d.decided_at else ""
        blocks.append(_context(f"*{d.status.capitalize()}*{who}{when}"))
    return blocks


def draft_fallback_text(d: Draft) -> str:
    return f"{KIND_LABEL.get(d.kind, d.kind)} draft #{d.id} v{d.version} ({d.status})"


def published_blocks(d: Draft) -> list[dict[str, Any]]:
    label = KIND_LABEL.get(d.kind, d.kind)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": f"{label} (final) — {d.title}"[:150]}}]
    blocks += [_section(c) for c in chunk_text(d.body)[:45]]
    blocks.append(_context(f"Approved by <@{d.decided_by}>" if d.decided_by else "Approved"))
    return blocks


def incident_line(i: Incident) -> str:
    closed = f", closed {i.closed_at:%H:%M UTC}" if i.closed_at else ""
    return f"*#{i.id}* {i.title} — {i.severity}, {i.status} (opened {i.opened_at:%Y-%m-%d %H:%M UTC}{closed})"


def edit_modal(d: Draft) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": "draft_edit_submit", "private_metadata": str(d.id),
        "title": {"type": "plain_text", "text": f"Edit draft #{d.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Save new version"[:24]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": "body",
            "label": {"type": "plain_text", "text": "Draft text"},
            "element": {"type": "plain_text_input", "action_id": "body_input", "multiline": True,
                        "initial_value": d.body[:3000], "max_length": 3000},
        }],
    }


def reject_modal(d: Draft) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": "draft_reject_submit", "private_metadata": str(d.id),
        "title": {"type": "plain_text", "text": f"Reject draft #{d.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why is this draft rejected?"},
            "element": {"type": "plain_text_input", "action_id": "reason_input", "multiline": True,
                        "min_length": 3, "max_length": 2000},
        }],
    }
