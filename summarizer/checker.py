"""Grounding checker: every checkable claim in a draft must appear in the draft's sources.

A claim is a timestamp, date, number, percentage, version, hostname, service name or identifier. Claims are
compared after light normalisation (``v2.3.1`` == ``2.3.1``, ``12 %`` == ``12%``, ``14:02`` matches a
source time ``14:02:05``). Redaction placeholders (``<PERSON_1>``) and citations (``[alert:5]``) are not claims.
Sentences with an unsupported claim are removed and reported; the rest get the ids of the sources they rest on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Masked before looking for claims: placeholders from redaction, citations, and Markdown emphasis markers.
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*_\d+>")
_CITATION = re.compile(r"\[(?:[a-z]+:[^\]\s]+)\]")
_REF = re.compile(r"\b(?:alert|log|timeline|incident|ticket|runbook|event):[\w.#-]+")

# Order matters: earlier kinds claim their span first.
_CLAIM_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("timestamp", re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?Z?)?")),
    ("timestamp", re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?(?:Z|UTC)\b)?")),
    ("version", re.compile(r"(?<![\w.])v\d+(?:\.\d+)*(?:[-+][\w.]+)?\b|\b\d+\.\d+\.\d+(?:\.\d+)*(?:[-+][\w.]+)?\b")),
    ("hostname", re.compile(r"\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)+\.?[a-z][a-z0-9-]*\b", re.I)),
    ("amount", re.compile(r"[$€£]\s?\d[\d,]*(?:\.\d+)?")),
    ("amount", re.compile(r"\b\d[\d,]*(?:\.\d+)?\s?(?:USD|EUR|GBP|dollars?|euros?)\b", re.I)),
    ("percentage", re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?%")),
    # kebab/snake case with a letter (checkout-api, orders_db, T-1001, E1234, pod-7f9c), CamelCase, `code`
    ("identifier", re.compile(r"`[^`\n]{1,80}`")),
    ("identifier", re.compile(r"\b(?=[\w-]*[A-Za-z])(?=[\w-]*[-_\d])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+\b")),
    ("identifier", re.compile(r"\b(?=\w*[A-Za-z])(?=\w*\d)[A-Za-z0-9]{2,}\b")),
    ("identifier", re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+\b")),
    ("number", re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*\b")),
]
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z<\[(*_`\"'0-9])")
_WORD = re.compile(r"[a-z][a-z0-9]+")
_STOP = frozenset(
    "the a an and or of to in on at for by with from was were is are be been this that it its as we our you your "
    "not no into after before during then than there their they them which who will would can could should has "
    "have had incident service".split()
)
# A reply must not promise what its runbooks don't say: these words need support from a runbook, not the ticket.
_PROMISE = re.compile(r"\b(refund\w*|credit\w*|compensat\w*|guarantee\w*|discount\w*|free of charge|waive\w*)\b", re.I)


@dataclass(frozen=True)
class Source:
    ref: str  # "alert:5", "runbook:disk-full.md#mitigation", "ticket:T-1001"
    text: str
    trusted: bool = True  # False for ticket text: it supports facts the customer stated, never promises


@dataclass(frozen=True)
class Claim:
    kind: str
    text: str


@dataclass
class CheckResult:
    text: str  # the checked text, unsupported sentences removed, source ids added
    claims: int = 0  # claims found in the input
    unsupported: list[str] = field(default_factory=list)  # one line per removed claim
    unsourced: list[str] = field(default_factory=list)  # sentences removed because no source relates to them


_LIST_MARKER = re.compile(r"^[ \t]*\(?\d{1,2}[.)](?=\s|$)", re.M)  # "1." or "(2)" opening a list item: not a claim


def _mask(text: str) -> str:
    text = _LIST_MARKER.sub(lambda m: " " * len(m.group(0)), text)
    text = _PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), text)
    text = _CITATION.sub(lambda m: " " * len(m.group(0)), text)
    return _REF.sub(lambda m: " " * len(m.group(0)), text)


def extract_claims(text: str) -> list[Claim]:
    """Checkable claims in text, left to right; placeholders and citations are skipped."""
    masked = _mask(text)
    taken = [False] * len(masked)
    found: list[tuple[int, Claim]] = []
    for kind, pattern in _CLAIM_PATTERNS:
        for m in pattern.finditer(masked):
            if any(taken[m.start() : m.end()]):
                continue
            token = m.group(0).strip().rstrip(".")
            if kind == "identifier" and token.startswith("`"):
                token = token.strip("`").strip()
                if not re.search(r"[\w]", token):
                    continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            found.append((m.start(), Claim(kind, token)))
    return [c for _, c in sorted(found, key=lambda x: x[0])]


def _norm_number(s: str) -> str:
    s = s.replace(",", "").replace(" ", "").rstrip("%")
    try:
        return repr(float(s))
    except ValueError:
        return s


class Corpus:
    """The sources of one draft, pre-normalised for fast claim lookups."""

    def __init__(self, sources: list[Source]):
        self.sources = sources
        self._low = [_mask(s.text).lower() for s in sources]
        self._claims = [extract_claims(s.text) for s in sources]
        numeric = ("number", "percentage")
        self._numbers = [{_norm_number(c.text) for c in cs if c.kind in numeric} for cs in self._claims]
        self._words = [set(_WORD.findall(t)) - _STOP for t in self._low]

    def supporting(self, claim: Claim, trusted_only: bool = False) -> list[int]:
        """Indexes of the sources that support a claim."""
        out = []
        for i, src in enumerate(self.sources):
            if trusted_only and not src.trusted:
                continue
            if self._supports(i, claim):
                out.append(i)
        return out

    def _supports(self, i: int, claim: Claim) -> bool:
        low, token = self._low[i], claim.text.lower()
        if claim.kind == "timestamp":
            token = re.sub(r"\s?(z|utc)$", "", token).replace("t", " ")
            if re.fullmatch(r"\d:\d{2}(:\d{2})?", token):
                token = "0" + token
            pattern = re.compile(rf"(?<![\d:]){re.escape(token)}(?![\d])")
            return any(pattern.search(re.sub(r"(?<=\d)t(?=\d)", " ", c.text.lower())) for c in self._claims[i]
                       if c.kind == "timestamp")
        if claim.kind == "version":
            bare = token.removeprefix("v")
            return re.search(rf"(?<![\w.])v?{re.escape(bare)}(?![\w]|\.\d)", low) is not None
        if claim.kind == "amount":
            value = _norm_number(re.sub(r"[^\d.,]", "", token))
            return any(c.kind == "amount" and _norm_number(re.sub(r"[^\d.,]", "", c.text)) == value
                       for c in self._claims[i])
        if claim.kind in ("number", "percentage"):
            if claim.kind == "percentage":
                return any(c.kind == "percentage" and _norm_number(c.text) == _norm_number(token)
                           for c in self._claims[i])
            return _norm_number(token) in self._numbers[i] or re.search(
                rf"(?<![\w.]){re.escape(token)}(?![\w]|\.\d)", low) is not None
        return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", low) is not None

    def related(self, sentence: str, limit: int = 2) -> list[int]:
        """Sources sharing the most content words with a sentence (at least two words)."""
        words = set(_WORD.findall(sentence.lower())) - _STOP
        scored = sorted(((len(words & w), -i) for i, w in enumerate(self._words)), reverse=True)
        return [-i for n, i in scored[:limit] if n >= 2]


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    for piece in _SENTENCE_SPLIT.split(text.strip()):
        if not piece.strip():
            continue
        if out and _LIST_MARKER.fullmatch(out[-1].rsplit("\n", 1)[-1].strip()):  # "1." cut off its item: rejoin
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def check_text(text: str, corpus: Corpus, *, cite: bool = True, promises: bool = False) -> CheckResult:
    """Remove sentences whose claims the sources do not support; add source ids to the ones kept.

    With ``promises`` (replies), a sentence promising a refund, credit etc., or naming an amount of money, needs a
    trusted source (a runbook, a resolved ticket) saying so: the customer's ticket is not enough.
    """
    result = CheckResult(text="")
    paragraphs = []
    for para in re.split(r"\n\s*\n", text.strip()):
        kept = []
        for sentence in split_sentences(para):
            claims = extract_claims(sentence)
            result.claims += len(claims)
            refs: list[int] = []
            bad = []
            for claim in claims:
                # in a reply, money comes from a runbook or resolved ticket, never from the customer's ticket
                support = corpus.supporting(claim, trusted_only=promises and claim.kind == "amount")
                if support:
                    refs.extend(support[:1])
                else:
                    bad.append(f"{claim.kind} {claim.text!r}")
            if promises:
                for m in _PROMISE.finditer(sentence):
                    result.claims += 1
                    if not _trusted_mentions(corpus, m.group(0).lower()[:6]):
                        bad.append(f"promise {m.group(0)!r}")
            if bad:
                snippet = " ".join(sentence.split())
                snippet = snippet if len(snippet) <= 140 else snippet[:139] + "…"
                result.unsupported.extend(f"{b} not in the sources: {snippet}" for b in bad)
                continue
            if cite:
                refs = list(dict.fromkeys(refs)) or corpus.related(sentence)
                cited = set(_CITATION.findall(sentence))
                tags = "".join(f"[{corpus.sources[i].ref}]" for i in refs if f"[{corpus.sources[i].ref}]" not in cited)
                if not refs and not cited and len(set(_WORD.findall(sentence.lower())) - _STOP) > 3:
                    result.unsourced.append(" ".join(sentence.split())[:140])
                    continue
                sentence = _append_tags(sentence, tags)
            kept.append(sentence)
        if kept:
            paragraphs.append(" ".join(kept))
    result.text = "\n\n".join(paragraphs)
    return result


def _trusted_mentions(corpus: Corpus, stem: str) -> bool:
    return any(src.trusted and stem in low for src, low in zip(corpus.sources, corpus._low, strict=True))


def _append_tags(sentence: str, tags: str) -> str:
    if not tags:
        return sentence
    m = re.search(r"([.!?]+[\"')\]]*)$", sentence)
    if m:
        return f"{sentence[: m.start()]} {tags}{m.group(1)}"
    return f"{sentence} {tags}"


def unsupported_in(text: str, corpus: Corpus) -> tuple[int, list[str]]:
    """Count claims in a finished draft and list those the sources do not support (nothing is changed)."""
    claims = extract_claims(text)
    bad = [f"{c.kind} {c.text!r}" for c in claims if not corpus.supporting(c)]
    return len(claims), bad
