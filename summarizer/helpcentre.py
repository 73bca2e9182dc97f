"""What a support team answers from: help-centre articles (Markdown or HTML) and exemplars, the approved
replies of answered tickets with the customer's specifics removed.

An exemplar is never the customer's text (issue 16): only the approved reply's answer sentences, without the
greeting, the sign-off, placeholders, numbers that could be an order or an amount of theirs, or e-mail addresses.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from summarizer.checker import split_sentences
from summarizer.index import Doc, section_docs

HELP_SUFFIXES = (".md", ".markdown", ".html", ".htm")
_BLOCK = {"p", "li", "div", "br", "tr", "section", "article"}
_SKIP = {"script", "style", "nav", "header", "footer", "head"}


class _HtmlToMarkdown(HTMLParser):
    """Headings become ``#`` lines, blocks become paragraphs; scripts, styles and navigation are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * min(int(tag[1]), 3) + " ")
        elif tag in _BLOCK:
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in _BLOCK:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_markdown(html: str) -> str:
    parser = _HtmlToMarkdown()
    parser.feed(html)
    text = "".join(parser.out)
    lines = [ln.strip() for ln in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def help_docs(folder: Path) -> list[Doc]:
    """One Doc (kind "help") per section of every article under `folder`; none when it does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return []
    docs: list[Doc] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in HELP_SUFFIXES and p.is_file()):
        if path.name.startswith("_"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix.lower() in (".html", ".htm"):
            text = html_to_markdown(text)
        docs += section_docs(text, path.relative_to(root).as_posix(), path.stem, "help")
    return docs


_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*_\d+>")
_SPECIFIC = re.compile(r"\d{4,}|[\w.+-]+@[\w-]+\.[\w.]+|[A-Z]{1,4}-\d+|[$€£]\s?\d|\d\s?(?:EUR|USD|GBP)\b")
_GREETING = re.compile(r"^(hello|hi|dear|hey|good (morning|afternoon|evening))\b", re.I)


def exemplar_text(reply: str, signoff: str = "") -> str:
    """The reusable part of an approved reply: its sentences without anything specific to the customer."""
    body = reply.strip()
    if signoff.strip() and signoff.strip() in body:
        body = body[: body.rfind(signoff.strip())]
    kept: list[str] = []
    for para in re.split(r"\n\s*\n", body):
        for sentence in split_sentences(para):
            s = " ".join(sentence.split())
            if not s or _GREETING.match(s) or _PLACEHOLDER.search(s) or _SPECIFIC.search(s):
                continue
            if re.match(r"^(kind regards|best regards|regards|thanks|thank you|sincerely)\b", s, re.I) and len(s) < 60:
                continue
            kept.append(s)
    return " ".join(kept)


def exemplar_doc(draft_id: int, reply: str, signoff: str = "") -> Doc | None:
    """The index entry of an approved reply, keyed by the draft (not the ticket); None when nothing general
    is left of it."""
    text = exemplar_text(reply, signoff)
    if len(text) < 20:
        return None
    title = "Approved reply: " + (text[:77] + "…" if len(text) > 78 else text)
    return Doc(key=f"exemplar:{draft_id}", title=title, text=f"{title}\n\n{text}", kind="exemplar")
