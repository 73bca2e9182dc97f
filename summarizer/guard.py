"""What the model writes is cleaned and checked before it reaches a draft.

The model may follow a prompt injection or invent facts: links, broadcast mentions and channel names are removed
(sanitize_model_output), citations must name retrieved documents, and the grounding checker drops sentences
whose claims the sources do not support (ground_prose, and residual for what is left in a finished draft).
"""

from __future__ import annotations

import re

from summarizer.checker import Corpus, check_text, unsupported_in

LINK_REMOVED = "[link removed]"
CHANNEL_REMOVED = "[channel removed]"

_URL_RE = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>()\[\]]+", re.IGNORECASE)
_BARE_DOMAIN_RE = re.compile(
    r"\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|co|ru|xyz|info|biz|app|dev|ly|me|cc|tk|top|link|site|online)"
    r"(?:/[^\s<>()\[\]]*)?",
    re.IGNORECASE,
)
_MENTION_RE = re.compile(
    r"<!(?:channel|here|everyone)(?:\|[^>]*)?>|<!subteam\^[^>]*>|@(?:channel|here|everyone)\b", re.IGNORECASE
)
# Slack channel links and #channel names: an injected "post this to #general" must not reach a channel.
_CHANNEL_RE = re.compile(r"<#C[A-Z0-9]+(?:\|[^>]*)?>|(?<![\w/#.&])#[a-z][a-z0-9_-]{1,79}\b")
_SLACK_LINK_RE = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>", re.IGNORECASE)


def _is_runbook_link(url: str) -> bool:
    return "runbook" in url.lower() and not re.match(r"(?i)(?:https?://|www\.)", url)


def sanitize_model_output(text: str) -> str:
    """Remove links to other sites and broadcast mentions that a prompt injection could smuggle out.

    Runbook citations like ``[runbook:disk-full.md#mitigation]`` and placeholders like ``<PERSON_1>``
    are kept.
    """
    text = _SLACK_LINK_RE.sub(lambda m: m.group(2) or LINK_REMOVED, text)
    text = _MENTION_RE.sub("", text)
    text = _CHANNEL_RE.sub(CHANNEL_REMOVED, text)
    text = _URL_RE.sub(lambda m: m.group(0) if _is_runbook_link(m.group(0)) else LINK_REMOVED, text)
    text = _BARE_DOMAIN_RE.sub(
        lambda m: m.group(0) if m.group(0).lower().endswith(".md") else LINK_REMOVED, text
    )
    # markdown link whose target got removed: keep only the label
    text = re.sub(r"\[([^\]]+)\]\(\[link removed\]\)", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def tidy_prose(text: str) -> str:
    """Drop repeated sentences (small models loop) and a trailing sentence cut off by the token limit."""
    out: list[str] = []
    seen: set[str] = set()
    for para in re.split(r"\n\s*\n", text.strip()):
        sentences = re.split(r"(?<=[.!?])\s+", para.strip())
        kept = []
        for sentence in sentences:
            norm = re.sub(r"\W+", " ", sentence.lower()).strip()
            if norm and norm in seen:
                continue
            seen.add(norm)
            kept.append(sentence)
        if kept:
            out.append(" ".join(kept))
    if len(out) > 1 and not re.search(r"[.!?)\]>»\"':]\s*$", out[-1]):
        last = re.split(r"(?<=[.!?])\s+", out[-1])
        out[-1] = " ".join(last[:-1])  # drop the unfinished sentence
        if not out[-1]:
            out.pop()
    while out and re.fullmatch(r"(?:\d+[.)]|[-*])\s*", out[-1]):  # a list item cut off before its text
        out.pop()
    return "\n\n".join(out)


def drop_sentences_with(text: str, marker: str) -> str:
    """Remove whole sentences containing marker (e.g. an injected call to action whose link was removed)."""
    paras = []
    for para in re.split(r"\n\s*\n", text):
        kept = [x for x in re.split(r"(?<=[.!?])\s+", para.strip()) if marker not in x]
        if kept:
            paras.append(" ".join(kept))
    return "\n\n".join(paras)


def drop_removed_sentences(text: str) -> str:
    """Drop the sentences whose link or channel sanitize_model_output removed: what is left of them is an
    injected call to action."""
    return drop_sentences_with(drop_sentences_with(text, LINK_REMOVED), CHANNEL_REMOVED)


def citations(text: str, allowed: set[str]) -> list[str]:
    """Doc keys cited in model output as [key]; only keys that were actually retrieved count."""
    return [k for k in re.findall(r"\[([a-z]+:[^\]\s]+)\]", text) if k in allowed]


def drop_unknown_citations(text: str, allowed: set[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        return m.group(0) if m.group(1) in allowed else ""

    return re.sub(r"\[((?:runbook|incident|ticket):[^\]\s]+)\]", repl, text)


def ground_prose(prose: dict[str, str], corpus: Corpus) -> tuple[dict[str, str], list[str], list[str]]:
    """Run the checker over each model-phrased section; a section left empty falls back to the owner."""
    out, removed, unsourced = {}, [], []
    for key, text in prose.items():
        checked = check_text(text, corpus)
        removed += checked.unsupported
        unsourced += checked.unsourced
        if checked.text.strip():
            out[key] = checked.text
    return out, removed, unsourced


def checker_note(removed: int, unsourced: int) -> str:
    return (
        f"the grounding checker removed {removed} unsupported claim(s) and "
        f"{unsourced} sentence(s) with no source"
    )


def residual(body: str, corpus: Corpus) -> list[str]:
    """Claims still unsupported in a finished draft (expected none): flagged, since they were not removed."""
    return [f"unverified {c}" for c in unsupported_in(body, corpus)[1]]
