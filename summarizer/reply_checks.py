"""What must never reach a customer in a reply, as checks: internal markup and internal-plan sentences.

Used on every reply sentence before it is kept (summarizer/ticket_reply.py) and by bench/replies to score
replies, so the bench measures exactly what the drafts are held to.
"""

from __future__ import annotations

import re

from summarizer.checker import split_sentences

# Citation brackets, file names, index keys, ticket ids, placeholders, code spans, heading anchors.
MARKUP = re.compile(
    r"\[[^\]\n]{1,200}\]"
    r"|\b[\w./-]+\.(?:md|markdown|html?|ya?ml|json|py|txt)\b"
    r"|\b(?:runbook|exemplar|help|ticket|incident|alert|log|timeline):\S+"
    r"|\b[A-Z]{1,4}-\d{2,}\b"
    r"|<[A-Z][A-Z_]*_\d+>"
    r"|`"
    r"|(?<!\w)#[a-z][\w-]+",
)
# Sentences that describe what the agent will do internally, talk about the sources, or are engineering jargon.
PLAN = re.compile(
    r"^\s*(?:first|second|third|then|next|finally|step \d+)\b[^.]*\b(?:i|we)\b"
    r"|^\s*\d+[.)]\s"
    r"|\b(?:i|we)(?: will|'ll| am going to| are going to| need to| must| should)(?: first)?"
    r" (?:check|confirm|verify|investigate|look into|review|reconcile|escalate|diagnose|query|pull)\b"
    r"|\b(?:as per|according to|based on|from) (?:the |our )?(?:runbook|excerpt|article|source|documentation"
    r"|knowledge base|guidance|help cent(?:re|er))"
    r"|\b(?:runbook|excerpt|on-?call|sre|postmortem|incident channel|alertmanager|provider records"
    r"|diagnos\w+|mitigation|void(?:ed)? (?:the )?authori[sz]ation)\b"
    r"|\bthe (?:customer|user|requester)\b"
    r"|\b(?:let me|i'll start by|i will start by)\b",
    re.I,
)


def markup_in(text: str, allow: str = "") -> list[str]:
    """Internal markup found in customer text; `allow` is the one placeholder the greeting may hold."""
    return [m.group(0) for m in MARKUP.finditer(text) if not (allow and m.group(0) == allow)]


def is_internal_plan(sentence: str) -> bool:
    return bool(PLAN.search(sentence))


def plan_sentences(text: str) -> list[str]:
    return [s for s in split_sentences(text) if is_internal_plan(s)]


def customer_sentences(text: str) -> tuple[list[str], list[str]]:
    """(kept, dropped): the sentences fit for a customer, and those with markup or an internal plan."""
    kept, dropped = [], []
    for para in re.split(r"\n\s*\n", text.strip()):
        for sentence in split_sentences(para):
            s = " ".join(sentence.split())
            if not s:
                continue
            (dropped if markup_in(s) or is_internal_plan(s) else kept).append(s)
    return kept, dropped
