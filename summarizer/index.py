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

from summarizer.config import current_settings
from summarizer.embeddings import Embedder
from summarizer.retrieval import BM25, chunk_markdown, fuse

# Share of the BM25 score in the fused ranking; 0 is dense only. See bench/retrieval for the sweep.
LEXICAL_WEIGHT = 0.5
# Above this many vectors an exact scan costs too much per query (bench/retrieval: ~100k chunks); switch to
# IVF, which keeps remove_ids and add_with_ids, so upserts stay incremental.
IVF_THRESHOLD = 50_000
IVF_NPROBE = 16
INDEX_FILE = "index.faiss"
DOCS_FILE = "docs.json"


@dataclass(frozen=True)
class Doc:
    key: str  # "runbook:high-error-rate.md#mitigation", "incident:12", "ticket:T-1001"
    title: str
    text: str
    kind: str  # "runbook" | "incident" | "ticket" | "help" | "exemplar"


@dataclass(frozen=True)
class Hit:
    key: str
    title: str
    text: str
    kind: str
    score: float  # fused and min-max normalised over the candidates: a rank, not an absolute measure
    similarity: float = 0.0  # the dense cosine to the query: comparable across queries (answerability)


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


def _ids_of(index) -> np.ndarray:
    """The ids stored in a flat IndexIDMap2 or an IVF index."""
    if isinstance(index, faiss.IndexIVF):
        lists = index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(index.nlist) if lists.list_size(i)]  # an empty list has no id buffer
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    return faiss.vector_to_array(index.id_map)


def _to_ivf(flat) -> faiss.IndexIVFFlat:
    """Rebuild an exact IndexIDMap2(IndexFlatIP) as IVF with the same ids (done once, when it grows large)."""
    ids = faiss.vector_to_array(flat.id_map)
    vecs = faiss.downcast_index(flat.index).reconstruct_n(0, flat.ntotal)
    nlist = int(4 * np.sqrt(len(ids)))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(flat.d), flat.d, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(len(ids), min(len(ids), 40 * nlist), replace=False)
    ivf.train(vecs[sample])
    ivf.add_with_ids(vecs, ids)
    ivf.nprobe = IVF_NPROBE
    return ivf


class VectorIndex:
    """Hybrid index keyed by Doc.key: FAISS inner product over normalized embeddings (cosine) fused with BM25."""

    def __init__(self, directory: Path, embedder: Embedder, faiss_threads: int | None = None):
        """``faiss_threads`` is settings.faiss_threads (OPSDRAFT_FAISS_THREADS); without it, the current settings'."""
        self.directory = Path(directory)
        self.embedder = embedder
        self.dim = embedder.dim
        self._lock = threading.RLock()
        self._docs: dict[int, Doc] = {}
        self._gpu_index = None
        self._gpu_res = None
        # searches come one query at a time: OpenMP threads only add jitter there (bench/retrieval: exact search
        # over 100k chunks has p99 9 ms on one thread), hence the default of 1.
        if faiss_threads is None:
            faiss_threads = current_settings().faiss_threads
        faiss.omp_set_num_threads(faiss_threads)
        self.lexical_weight = LEXICAL_WEIGHT
        self._lexical = BM25()
        index_path, docs_path = self.directory / INDEX_FILE, self.directory / DOCS_FILE
        if index_path.is_file() and docs_path.is_file():
            index = faiss.read_index(str(index_path))
            if index.d != self.dim:
                raise ValueError(f"index at {index_path} has dim {index.d}, embedder has {self.dim}")
            if isinstance(index, faiss.IndexIVF):
                index.nprobe = IVF_NPROBE
            self.index = index
            live = set(_ids_of(index).tolist())
            for row in json.loads(docs_path.read_text(encoding="utf-8")):
                doc = Doc(key=row["key"], title=row["title"], text=row["text"], kind=row["kind"])
                if doc_id(doc.key) in live:
                    self._docs[doc_id(doc.key)] = doc
                    self._lexical.set(doc_id(doc.key), f"{doc.title}\n{doc.text}")
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
                self._lexical.set(i, f"{doc.title}\n{doc.text}")
            self._gpu_index = None
            if len(self) >= IVF_THRESHOLD and not isinstance(self.index, faiss.IndexIVF):
                self.index = _to_ivf(self.index)
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

    def search(self, query: str, k: int = 5, kinds: set[str] | None = None,
               weights: dict[str, float] | None = None) -> list[Hit]:
        """Top k documents by fused dense + BM25 score (``Hit.score``, 0..1), optionally of some kinds only;
        ``weights`` multiplies the score per kind (replies rank help articles above runbooks)."""
        with self._lock:
            total = len(self)
            if total == 0 or k <= 0 or not query.strip():
                return []
            qv = self.embedder.encode_query(query)
            # over-fetch so fusion can promote a doc the dense ranking put lower; all of them when filtering
            fetch = total if kinds else min(total, max(10 * k, 50))
            scores, ids = self._searchable().search(qv, fetch)
            dense = {int(i): float(s) for s, i in zip(scores[0].tolist(), ids[0].tolist(), strict=True) if i >= 0}
            lex_ids, lex_scores = self._lexical.scores(query)
            lexical = dict(zip(lex_ids.tolist(), lex_scores.tolist(), strict=True))
            fused = fuse(dense, lexical, self.lexical_weight) if self.lexical_weight > 0 else dense
            if weights:
                fused = {i: v * weights.get(d.kind, 1.0) for i, v in fused.items() if (d := self._docs.get(i))}
            hits: list[Hit] = []
            for i, score in sorted(fused.items(), key=lambda kv: -kv[1]):
                doc = self._docs.get(i)
                if doc is None or (kinds and doc.kind not in kinds):
                    continue
                hits.append(Hit(doc.key, doc.title, doc.text, doc.kind, float(score), dense.get(i, 0.0)))
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
                live = _ids_of(self.index).tolist()
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
    """One Doc per ``##``/``###`` section of every ``*.md`` runbook (subfolders too, ``_*.md`` skipped).

    The runbook title (its ``#`` heading) prefixes every section so a section is retrievable on its own.
    Long sections are split at paragraph breaks; keys stay stable: ``runbook:<relative path>#<anchor>``.
    """
    root = Path(runbooks_dir)
    docs: list[Doc] = []
    for path in sorted(root.rglob("*.md")):
        if path.name.startswith("_"):
            continue
        docs += section_docs(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix(), path.stem,
                             "runbook")
    return docs


def section_docs(text: str, rel: str, stem: str, kind: str) -> list[Doc]:
    """The sections of one Markdown document as Docs keyed ``<kind>:<rel>#<anchor>``."""
    title = stem.replace("-", " ").capitalize()
    seen: dict[str, int] = {}
    docs: list[Doc] = []
    for chunk in chunk_markdown(text):
        if chunk.level == 1:
            title = chunk.heading
        name = chunk.heading if chunk.level > 1 else "Overview"
        if not chunk.text:
            continue
        anchor = _slug(name)
        seen[anchor] = seen.get(anchor, 0) + 1
        if seen[anchor] > 1:
            anchor = f"{anchor}-{seen[anchor]}"
        docs.append(Doc(key=f"{kind}:{rel}#{anchor}", title=f"{title} — {name}",
                        text=f"{title} — {name}\n\n{chunk.text}", kind=kind))
    return docs
