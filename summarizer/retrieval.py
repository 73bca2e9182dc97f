"""Hybrid retrieval pieces: Markdown chunking by heading, a BM25 lexical index, and score fusion.

Alert names (``KubePodCrashLooping``), metric names and error codes are exact strings that dense MiniLM
embeddings blur; BM25 over split identifiers finds them, the embeddings find paraphrases. Fusing both beats
either alone on the alert -> runbook benchmark (bench/retrieval).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_STOP = frozenset(
    "a an and are as at be by for from has have if in into is it its of on or that the this to was were will "
    "with you your can not no".split()
)


def tokens(text: str) -> list[str]:
    """Lower-case words; identifiers also yield their camelCase / snake_case parts."""
    out: list[str] = []
    for raw in re.findall(r"[A-Za-z0-9_]+", text):
        for word in _TOKEN.findall(raw.replace("_", " ")) if "_" in raw else [raw]:
            low = word.lower()
            if low not in _STOP and len(low) > 1:
                out.append(low)
            parts = _CAMEL.findall(word)
            if len(parts) > 1:
                out.extend(p.lower() for p in parts if len(p) > 1 and p.lower() not in _STOP)
    return out


@dataclass(frozen=True)
class Chunk:
    level: int  # heading level, 0 for the text before the first heading
    heading: str
    text: str


def chunk_markdown(text: str, max_chars: int = 1500) -> list[Chunk]:
    """Split at ``#``..``###`` headings (not inside code fences); long sections split at blank lines."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)  # front matter
    sections: list[tuple[int, str, list[str]]] = [(0, "", [])]
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,3})\s+(.+?)\s*#*\s*$", line)
        if m:
            sections.append((len(m.group(1)), m.group(2), []))
        else:
            sections[-1][2].append(line)
    out: list[Chunk] = []
    for level, heading, lines in sections:
        body = "\n".join(lines).strip()
        if not body:
            out.append(Chunk(level, heading, ""))  # a title with no text still names what follows
            continue
        while len(body) > max_chars:
            cut = body.rfind("\n\n", 0, max_chars)
            cut = cut if cut > max_chars // 3 else max_chars
            out.append(Chunk(level, heading, body[:cut].strip()))
            body = body[cut:].strip()
        out.append(Chunk(level, heading, body))
    return out


class BM25:
    """Okapi BM25 over an inverted index held in numpy arrays; rebuilt lazily after changes."""

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self._docs: dict[int, Counter[str]] = {}
        self._dirty = True

    def __len__(self) -> int:
        return len(self._docs)

    def set(self, doc_id: int, text: str) -> None:
        self._docs[doc_id] = Counter(tokens(text))
        self._dirty = True

    def remove(self, doc_id: int) -> None:
        if self._docs.pop(doc_id, None) is not None:
            self._dirty = True

    def _build(self) -> None:
        self._ids = np.array(list(self._docs), dtype=np.int64)
        lengths = np.array([sum(c.values()) for c in self._docs.values()], dtype=np.float32)
        avg = float(lengths.mean()) if len(lengths) else 1.0
        norm = self.k1 * (1 - self.b + self.b * lengths / max(avg, 1e-9))
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for row, counts in enumerate(self._docs.values()):
            for term, tf in counts.items():
                rows, tfs = postings.setdefault(term, ([], []))
                rows.append(row)
                tfs.append(tf)
        n = len(self._docs)
        self._postings = {}
        for term, (rows, tfs) in postings.items():
            r = np.array(rows, dtype=np.int64)
            tf = np.array(tfs, dtype=np.float32)
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            self._postings[term] = (r, (idf * tf * (self.k1 + 1) / (tf + norm[r])).astype(np.float32))
        self._dirty = False

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(doc ids, scores) of every document sharing a term with the query."""
        if self._dirty:
            self._build()
        acc = np.zeros(len(self._ids), dtype=np.float32)
        for term, qtf in Counter(tokens(query)).items():
            hit = self._postings.get(term)
            if hit is not None:
                acc[hit[0]] += hit[1] * (1 + math.log(qtf))
        nz = np.flatnonzero(acc)
        return self._ids[nz], acc[nz]


def fuse(dense: dict[int, float], lexical: dict[int, float], weight: float = 0.5) -> dict[int, float]:
    """Convex mix of min-max normalised scores; a doc missing from one list gets 0 there."""

    def norm(d: dict[int, float]) -> dict[int, float]:
        if not d:
            return {}
        lo, hi = min(d.values()), max(d.values())
        span = hi - lo or 1.0
        return {k: (v - lo) / span for k, v in d.items()}

    nd, nl = norm(dense), norm(lexical)
    return {k: (1 - weight) * nd.get(k, 0.0) + weight * nl.get(k, 0.0) for k in nd.keys() | nl.keys()}
