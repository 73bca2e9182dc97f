"""A small FAISS vector index of runbook sections, past incidents and tickets, stored on disk."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from summarizer.embeddings import Embedder

INDEX_FILE = "index.faiss"
DOCS_FILE = "docs.json"


@dataclass(frozen=True)
class Doc:
    key: str  # "runbook:high-error-rate.md#mitigation", "incident:12", "ticket:T-1001"
    title: str
    text: str
    kind: str  # "runbook" | "incident" | "ticket"


@dataclass(frozen=True)
class Hit:
    key: str
    title: str
    text: str
    kind: str
    score: float


def doc_id(key: str) -> int:
    """Stable positive int64 id derived from the document key."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF or 1


def _gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get is not None else 0
    except Exception:  # noqa: BLE001 - a CPU build may stub this out
        return 0


class VectorIndex:
    """Inner-product index over normalized embeddings (cosine similarity), keyed by Doc.key."""

    def __init__(self, directory: Path, embedder: Embedder):
        self.directory = Path(directory)
        self.embedder = embedder
        self.dim = embedder.dim
        self._lock = threading.RLock()
        self._docs: dict[int, Doc] = {}
        self._gpu_index = None
        self._gpu_res = None
        index_path, docs_path = self.directory / INDEX_FILE, self.directory / DOCS_FILE
        if index_path.is_file() and docs_path.is_file():
            index = faiss.read_index(str(index_path))
            if index.d != self.dim:
                raise ValueError(f"index at {index_path} has dim {index.d}, embedder has {self.dim}")
            self.index = index
            live = set(faiss.vector_to_array(index.id_map).tolist())
            for row in json.loads(docs_path.read_text(encoding="utf-8")):
                doc = Doc(key=row["key"], title=row["title"], text=row["text"], kind=row["kind"])
                if doc_id(doc.key) in live:
                    self._docs[doc_id(doc.key)] = doc
        else:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def keys(self) -> list[str]:
        """Keys of all indexed documents."""
        with self._lock:
            return [d.key for d in self._docs.values()]

    def upsert(self, docs: list[Doc], progress: Callable[[str], None] | None = None) -> int:
        """Add or replace documents (same key replaces). Returns how many were written."""
        latest: dict[str, Doc] = {}
        for doc in docs:  # last one wins within a batch too
            latest[doc.key] = doc
        if not latest:
            return 0
        batch = list(latest.values())
        if progress:
            progress(f"embedding {len(batch)} documents")
        vecs = self.embedder.encode([f"{d.title}\n{d.text}" for d in batch])
        ids = np.array([doc_id(d.key) for d in batch], dtype=np.int64)
        with self._lock:
            self.index.remove_ids(ids)
            self.index.add_with_ids(vecs, ids)
            for i, doc in zip(ids.tolist(), batch, strict=True):
                self._docs[i] = doc
            self._gpu_index = None
        if progress:
            progress(f"indexed {len(batch)} documents ({len(self)} total)")
        return len(batch)

    def _searchable(self):
        if _gpu_count() <= 0:
            return self.index
        if self._gpu_index is None:
            self._gpu_res = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self.index)
        return self._gpu_index

    def search(self, query: str, k: int = 5, kinds: set[str] | None = None) -> list[Hit]:
        with self._lock:
            total = len(self)
            if total == 0 or k <= 0 or not query.strip():
                return []
            qv = self.embedder.encode([query])
            # over-fetch when filtering by kind, then cut to k
            fetch = total if kinds else min(k, total)
            scores, ids = self._searchable().search(qv, fetch)
            hits: list[Hit] = []
            for score, i in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                doc = self._docs.get(int(i))
                if i < 0 or doc is None or (kinds and doc.kind not in kinds):
                    continue
                hits.append(Hit(doc.key, doc.title, doc.text, doc.kind, float(score)))
                if len(hits) >= k:
                    break
            return hits

    def save(self) -> None:
        """Write index + docs atomically: temp files first, then os.replace over the old ones."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            suffix = f".tmp{os.getpid()}"
            tmp_index = self.directory / (INDEX_FILE + suffix)
            tmp_docs = self.directory / (DOCS_FILE + suffix)
            try:
                faiss.write_index(self.index, str(tmp_index))
                live = faiss.vector_to_array(self.index.id_map).tolist()
                rows = [asdict(self._docs[i]) for i in live if i in self._docs]
                tmp_docs.write_text(json.dumps(rows, ensure_ascii=False, indent=0), encoding="utf-8")
                for tmp in (tmp_index, tmp_docs):
                    with tmp.open("rb") as fh:
                        os.fsync(fh.fileno())
                # docs first: the loader keys docs by id, so extra docs are harmless, missing ones are not
                os.replace(tmp_docs, self.directory / DOCS_FILE)
                os.replace(tmp_index, self.directory / INDEX_FILE)
            finally:
                tmp_index.unlink(missing_ok=True)
                tmp_docs.unlink(missing_ok=True)


_SLUG_RE = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _SLUG_RE.sub("-", text.lower()).strip("-") or "section"


def runbook_docs(runbooks_dir: Path) -> list[Doc]:
    """One Doc per ``##`` section of every ``*.md`` runbook; the runbook title is kept for context."""
    docs: list[Doc] = []
    for path in sorted(Path(runbooks_dir).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        title = path.stem.replace("-", " ").capitalize()
        sections: list[tuple[str, list[str]]] = [("Overview", [])]
        for line in text.splitlines():
            if line.startswith("# ") and not line.startswith("## "):
                title = line[2:].strip()
            elif line.startswith("## "):
                sections.append((line[3:].strip(), []))
            else:
                sections[-1][1].append(line)
        seen: dict[str, int] = {}
        for name, lines in sections:
            body = "\n".join(lines).strip()
            if not body:
                continue
            anchor = _slug(name)
            seen[anchor] = seen.get(anchor, 0) + 1
            if seen[anchor] > 1:
                anchor = f"{anchor}-{seen[anchor]}"
            docs.append(
                Doc(
                    key=f"runbook:{path.name}#{anchor}",
                    title=f"{title} — {name}",
                    text=f"{title} — {name}\n\n{body}",
                    kind="runbook",
                )
            )
    return docs
