"""The agent's view of a ticket reply in Slack: which sentence rests on which source, or that none did.

The reply's body is what the customer gets and holds no citation; the mapping lives in `Draft.citations`
and is shown here, under the body, as numbered footnotes that are never sent.
"""

from __future__ import annotations

from typing import Any

from opsdraft.models import Draft
from opsdraft.slacktext import escape

MAX_FOOTNOTES = 9  # a context block holds 10 elements; one is the heading


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reply_source_blocks(d: Draft) -> list[dict[str, Any]]:
    """Footnotes for a ticket reply: [n] source key and title, and the sentences of the reply resting on it."""
    if d.kind != "ticket_reply":
        return []
    citations = d.citations or []
    if not citations:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": (
            ":no_entry: *No source answered this ticket.* The reply above only acknowledges it and says who "
            "follows up; nothing in it comes from the help centre. Answer it yourself, or approve it as is.")}}]
    order: dict[str, tuple[str, list[str]]] = {}
    for c in citations:
        for src in c.get("sources", []):
            order.setdefault(src["key"], (src.get("title", ""), []))[1].append(str(c.get("sentence", "")))
    elements = [{"type": "mrkdwn", "text": "*Sources of this reply* (for you; the customer does not see them):"}]
    for n, (key, (title, sentences)) in enumerate(list(order.items())[:MAX_FOOTNOTES], 1):
        quoted = " ".join(f"“{escape(_short(s, 160))}”" for s in sentences[:3])
        elements.append({"type": "mrkdwn", "text": _short(f"[{n}] `{escape(key)}` {escape(title)}: {quoted}", 2000)})
    return [{"type": "context", "elements": elements}]
