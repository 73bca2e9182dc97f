"""Retrieval benchmark: alert -> runbook recall on ../shared/data/alert-runbooks, and query latency at 100k chunks.

    .venv/bin/python bench/retrieval/run.py [--data DIR] [--chunks 100000]

Queries are the alerting rules (name, summary, description, labels); the right answer is the runbook whose file
name is the last segment of the rule's runbook_url. The reference (whole-runbook MiniLM, exact inner product,
summary + description as in the data's NOTICE) is measured in the same run. Skips cleanly without the data.
The data's text is read, never copied into the project.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from summarizer.embeddings import get_embedder  # noqa: E402
from summarizer.index import VectorIndex, runbook_docs  # noqa: E402
from summarizer.retrieval import BM25, tokens  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alert-runbooks"


def load_alerts(data: Path) -> list[tuple[str, str, str]]:
    """(full query, summary + description, expected runbook stem lower-case) for each alert with a runbook."""
    import yaml

    stems = {p.stem.lower() for p in (data / "runbooks").rglob("*.md") if not p.name.startswith("_")}
    out = []
    for rule_file in sorted((data / "rules").glob("*.yaml")):
        spec = yaml.safe_load(rule_file.read_text(encoding="utf-8"))
        for group in (spec.get("spec") or {}).get("groups", []):
            for rule in group.get("rules", []):
                ann = rule.get("annotations") or {}
                url = ann.get("runbook_url", "")
                target = url.rstrip("/").rsplit("/", 1)[-1].lower()
                if "alert" not in rule or target not in stems:
                    continue
                text = f"{ann.get('summary', '')}\n{ann.get('description', '')}".strip()
                labels = " ".join(f"{k}={v}" for k, v in (rule.get("labels") or {}).items())
                out.append((f"{rule['alert']}\n{text}\n{labels}", text, target))
    return out


def recall(ranker: Callable[[str], list[str]], queries: list[tuple[str, str]]) -> tuple[float, float]:
    r1 = r5 = 0
    for query, target in queries:
        ranked = ranker(query)
        r1 += ranked[:1] == [target]
        r5 += target in ranked[:5]
    return r1 / len(queries), r5 / len(queries)


def stem_of(key: str) -> str:
    return key.split(":", 1)[1].split("#", 1)[0].rsplit("/", 1)[-1].removesuffix(".md").lower()


def ranked_runbooks(index: VectorIndex, query: str) -> list[str]:
    """Runbooks in the order of their best chunk (the product ranks chunks; a runbook is its best one)."""
    return list(dict.fromkeys(stem_of(h.key) for h in index.search(query, k=60)))


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples) * 1000, q))


def latency(n_chunks: int, dim: int, lexical_vocab: list[str], emb=None, real_queries: list[str] = ()) -> None:
    import faiss

    # one query at a time: OpenMP threads only add scheduling jitter (and the box is shared)
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n_chunks, dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    planted = rng.integers(0, n_chunks, 300)  # each query is a noisy copy of one chunk: its right answer
    queries = vecs[planted] + 0.02 * rng.standard_normal((300, dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))  # what VectorIndex uses
    flat.add_with_ids(vecs, np.arange(n_chunks, dtype=np.int64))
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(vecs)
    hnsw.hnsw.efSearch = 64
    print(f"  HNSW build: {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    nlist = int(4 * np.sqrt(n_chunks))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vecs[rng.choice(n_chunks, min(n_chunks, 40 * nlist), replace=False)])
    ivf.add_with_ids(vecs, np.arange(n_chunks, dtype=np.int64))  # IVF keeps remove_ids: incremental upserts
    ivf.nprobe = 16
    print(f"  IVF build (nlist {nlist}): {time.perf_counter() - t:.1f}s")
    for name, index in (("flat (exact)", flat), ("HNSW M=32 ef=64", hnsw), (f"IVF{nlist} nprobe=16", ivf)):
        times = []
        for q in queries:
            t = time.perf_counter()
            index.search(q[None, :], 60)
            times.append(time.perf_counter() - t)
        _, top = index.search(queries, 1)
        hit = float(np.mean(top[:, 0] == planted))
        print(f"  dense {name:18s} p50 {percentile_ms(times, 50):6.2f} ms  p99 {percentile_ms(times, 99):6.2f} ms"
              f"  recall@1 of the planted chunk {hit:.3f}")
    bm25 = BM25()
    t = time.perf_counter()
    for i in range(n_chunks):  # synthetic chunks drawn from the runbooks' own vocabulary
        bm25.set(i, " ".join(rng.choice(lexical_vocab, 80)))
    bm25.scores("warm up")
    print(f"  BM25 build for {n_chunks} chunks: {time.perf_counter() - t:.1f}s")
    times = []
    for _ in range(300):
        query = " ".join(rng.choice(lexical_vocab, 25))
        t = time.perf_counter()
        bm25.scores(query)
        times.append(time.perf_counter() - t)
    print(f"  lexical BM25 (25-term query)   p50 {percentile_ms(times, 50):6.2f} ms  "
          f"p99 {percentile_ms(times, 99):6.2f} ms")
    if emb is not None:  # the whole query as the product runs it above 50k chunks: embed, IVF, BM25
        times = []
        for _ in range(3):
            for query in real_queries:
                t = time.perf_counter()
                ivf.search(emb.encode_query(query), 60)
                bm25.scores(query)
                times.append(time.perf_counter() - t)
        print(f"  whole query ({emb.query_runtime} embedding + IVF + BM25, real alert queries) "
              f"p50 {percentile_ms(times, 50):6.2f} ms  p99 {percentile_ms(times, 99):6.2f} ms")


def embedding_latency(emb, queries: list[str]) -> None:
    """Query embedding alone: torch (sentence-transformers) against the runtime in use, same queries, same run."""
    ways = {"torch (sentence-transformers)": lambda q: emb.encode([q])}
    if emb.query_runtime != "torch":
        ways[f"{emb.query_runtime} (product default)"] = emb.encode_query
    ref = emb.encode(queries)
    p50s = {}
    for name, fn in ways.items():
        for q in queries[:10]:
            fn(q)  # warm-up
        times, vecs = [], []
        for _ in range(3):
            for q in queries:
                t = time.perf_counter()
                vecs.append(fn(q))
                times.append(time.perf_counter() - t)
        cos = (np.concatenate(vecs[:len(queries)]) * ref).sum(axis=1)
        p50s[name] = percentile_ms(times, 50)
        print(f"  query embedding, {name:32s} p50 {p50s[name]:5.1f} ms  p99 {percentile_ms(times, 99):5.1f} ms  "
              f"cosine to torch min {cos.min():.4f}")
    if len(p50s) == 2:
        a, b = p50s.values()
        print(f"  ratio at p50: {a / b:.2f}x faster than torch")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--chunks", type=int, default=100_000)
    args = ap.parse_args()
    if not (args.data / "rules").is_dir() or not (args.data / "runbooks").is_dir():
        print(f"SKIP: {args.data} not found (third-party benchmark data; see its NOTICE.md)")
        return 0
    alerts = load_alerts(args.data)
    full = [(q, t) for q, _, t in alerts]
    short = [(s, t) for _, s, t in alerts]
    emb = get_embedder()
    print(f"{len(alerts)} alerts with a matching runbook")

    # Reference: one vector per whole runbook, exact inner product.
    files = [p for p in sorted((args.data / "runbooks").rglob("*.md")) if not p.name.startswith("_")]
    whole = emb.encode([p.read_text(encoding="utf-8") for p in files])
    names = [p.stem.lower() for p in files]

    def reference(query: str) -> list[str]:
        scores = whole @ emb.encode([query])[0]
        return [names[i] for i in np.argsort(-scores)]

    rows = [("reference: whole-runbook MiniLM, summary+description", reference, short),
            ("reference: whole-runbook MiniLM, full alert", reference, full)]
    with tempfile.TemporaryDirectory() as tmp:
        index = VectorIndex(Path(tmp), emb)
        t = time.perf_counter()
        docs = runbook_docs(args.data / "runbooks")
        index.upsert(docs)
        print(f"indexed {len(docs)} heading chunks of {len(files)} runbooks in {time.perf_counter() - t:.1f}s")

        def at(weight: float) -> Callable[[str], list[str]]:
            def run(query: str) -> list[str]:
                index.lexical_weight = weight
                return ranked_runbooks(index, query)

            return run

        rows += [("chunks, dense only", at(0.0), full), ("chunks, BM25 only", at(1.0), full)]
        rows += [(f"chunks, hybrid w={w} (product default 0.5)" if w == 0.5 else f"chunks, hybrid w={w}", at(w), full)
                 for w in (0.3, 0.5, 0.7)]
        rows += [("chunks, hybrid w=0.5, summary+description only", at(0.5), short)]
        print(f"\n{'method':58s} recall@1 recall@5")
        for name, ranker, queries in rows:
            r1, r5 = recall(ranker, queries)
            print(f"{name:58s} {r1:8.3f} {r5:8.3f}")
        index.lexical_weight = 0.5
        times = []
        for query, _ in full:
            t = time.perf_counter()
            index.search(query, k=5)
            times.append(time.perf_counter() - t)
        print(f"\nproduct search on {len(index)} chunks incl. query embedding ({emb.query_runtime}): "
              f"p50 {percentile_ms(times, 50):.1f} ms, p99 {percentile_ms(times, 99):.1f} ms")
        embedding_latency(emb, [q for q, _ in full])
        vocab = sorted({w for d in docs for w in tokens(d.text)})
    print(f"\nquery latency at {args.chunks} synthetic chunks (dim {emb.dim}, 1 query at a time, k=60):")
    latency(args.chunks, emb.dim, vocab, emb, [q for q, _ in full])
    print("targets: recall@1 >= 0.85, recall@5 >= 0.98, query p99 <= 20 ms at 100k chunks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
