"""FAISS vector index and runbook chunking, with the real embedding model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import pytest

from summarizer.embeddings import get_embedder
from summarizer.index import Doc, VectorIndex, doc_id, runbook_docs

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"


@pytest.fixture(scope="module")
def embedder():
    return get_embedder()


def _docs() -> list[Doc]:
    return [
        Doc(
            "runbook:disk-full.md#mitigation",
            "Disk full — Mitigation",
            "Free space by removing rotated logs and pruning old container images.",
            "runbook",
        ),
        Doc(
            "runbook:certificate-expiry.md#mitigation",
            "TLS certificate expiry — Mitigation",
            "Renew the TLS certificate and reload the load balancer.",
            "runbook",
        ),
        Doc(
            "incident:12",
            "Checkout 5xx after deploy",
            "HTTP 500 errors on checkout after release v2.3.1.",
            "incident",
        ),
        Doc("ticket:T-1001", "Charged twice", "I was charged twice for order 1234.", "ticket"),
    ]


def test_embedder_shape_and_norm(embedder):
    vecs = embedder.encode(["hello", "disk is full"])
    assert vecs.shape == (2, embedder.dim) and embedder.dim == 384
    assert vecs.dtype.name == "float32"
    assert abs(float((vecs[0] ** 2).sum()) - 1.0) < 1e-4


def test_doc_id_stable_positive():
    assert doc_id("incident:12") == doc_id("incident:12")
    assert doc_id("incident:12") != doc_id("incident:13")
    assert 0 < doc_id("ticket:T-1") < 2**63


def test_upsert_search_and_replace(tmp_path, embedder):
    index = VectorIndex(tmp_path, embedder)
    assert len(index) == 0 and index.search("anything") == []
    assert index.upsert(_docs()) == 4
    assert len(index) == 4
    assert sorted(index.keys()) == sorted(d.key for d in _docs())
    hits = index.search("no space left on device", k=2)
    assert hits[0].key == "runbook:disk-full.md#mitigation"
    assert hits[0].score >= hits[1].score
    # same key again replaces, no duplicate
    new = Doc(
        "incident:12", "Checkout 5xx after deploy", "Database failover caused write errors.", "incident"
    )
    assert index.upsert([new]) == 1
    assert len(index) == 4
    found = [h for h in index.search("database failover write errors", k=4) if h.key == "incident:12"]
    assert len(found) == 1 and "failover" in found[0].text


def test_kind_filter(tmp_path, embedder):
    index = VectorIndex(tmp_path, embedder)
    index.upsert(_docs())
    hits = index.search("charged twice refund", k=5, kinds={"runbook"})
    assert hits and all(h.kind == "runbook" for h in hits)
    assert [h.key for h in index.search("charged twice", k=1, kinds={"ticket"})] == ["ticket:T-1001"]


def test_save_and_reload(tmp_path, embedder):
    index = VectorIndex(tmp_path, embedder)
    index.upsert(_docs())
    index.save()
    assert (tmp_path / "index.faiss").is_file() and (tmp_path / "docs.json").is_file()
    assert not list(tmp_path.glob("*.tmp*"))
    again = VectorIndex(tmp_path, embedder)
    assert len(again) == 4
    assert again.search("renew TLS certificate", k=1)[0].key == "runbook:certificate-expiry.md#mitigation"
    again.upsert([_docs()[0]])  # replace after reload keeps count
    assert len(again) == 4


def test_interrupted_save_keeps_previous_index(tmp_path, embedder, monkeypatch):
    index = VectorIndex(tmp_path, embedder)
    index.upsert(_docs()[:2])
    index.save()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    index.upsert(_docs()[2:])
    real_write = faiss.write_index

    def crash_midway(idx, path):  # write a partial file, then "crash"
        real_write(idx, path)
        Path(path).write_bytes(Path(path).read_bytes()[:100])
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(faiss, "write_index", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        index.save()
    monkeypatch.undo()

    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # old files intact, temp files cleaned up
    reloaded = VectorIndex(tmp_path, embedder)
    assert len(reloaded) == 2
    assert {d["key"] for d in json.loads((tmp_path / "docs.json").read_text())} == {
        "runbook:disk-full.md#mitigation",
        "runbook:certificate-expiry.md#mitigation",
    }


def test_runbook_chunking(tmp_path):
    docs = runbook_docs(RUNBOOKS)
    names = {p.name for p in RUNBOOKS.glob("*.md")}
    assert {
        "high-error-rate.md",
        "database-failover.md",
        "certificate-expiry.md",
        "disk-full.md",
        "payment-provider-outage.md",
    } <= names
    keys = {d.key for d in docs}
    for name in names:
        for section in ("symptoms", "diagnosis", "mitigation", "customer-communication"):
            assert f"runbook:{name}#{section}" in keys
    assert len(keys) == len(docs)
    doc = next(d for d in docs if d.key == "runbook:high-error-rate.md#mitigation")
    assert doc.kind == "runbook"
    assert doc.title == "High HTTP error rate — Mitigation"
    assert doc.text.startswith("High HTTP error rate — Mitigation") and "roll it back" in doc.text

    # a custom runbook with an intro and duplicate heading
    (tmp_path / "x.md").write_text(
        "# X thing\n\nIntro line.\n\n## Steps\n\none\n\n## Steps\n\ntwo\n\n## Empty\n"
    )
    custom = runbook_docs(tmp_path)
    assert [d.key for d in custom] == ["runbook:x.md#overview", "runbook:x.md#steps", "runbook:x.md#steps-2"]


def test_runbooks_retrievable(tmp_path, embedder):
    index = VectorIndex(tmp_path, embedder)
    index.upsert(runbook_docs(RUNBOOKS))
    top = index.search("customer was charged twice, wants a refund", k=3)
    assert any(h.key.startswith("runbook:payment-provider-outage.md") for h in top)
    top = index.search("5xx errors spiked right after the deploy", k=3)
    assert any(h.key.startswith("runbook:high-error-rate.md") for h in top)
    shutil.rmtree(tmp_path)


def test_large_index_switches_to_ivf_and_stays_incremental(tmp_path, embedder, monkeypatch):
    import summarizer.index as index_module

    monkeypatch.setattr(index_module, "IVF_THRESHOLD", 40)
    monkeypatch.setattr(index_module, "IVF_NPROBE", 64)  # all lists: exact on this tiny index
    services = [f"svc{i:02d}" for i in range(48)]
    docs = [Doc(f"incident:{100 + i}", f"Incident {i}", f"{s} ran out of memory on node-{i}", "incident")
            for i, s in enumerate(services)]
    index = VectorIndex(tmp_path, embedder)
    index.upsert(docs[:30])
    assert not isinstance(index.index, faiss.IndexIVF)
    index.upsert(docs[30:] + _docs())
    assert isinstance(index.index, faiss.IndexIVF) and len(index) == 52
    assert index.search("no space left on device", k=1)[0].key == "runbook:disk-full.md#mitigation"
    index.upsert([Doc("incident:107", "Incident 7", "TLS handshake failures at the edge", "incident")])
    assert len(index) == 52 and sorted(index.keys()) == sorted({d.key for d in docs + _docs()})
    index.save()
    again = VectorIndex(tmp_path, embedder)
    assert isinstance(again.index, faiss.IndexIVF) and len(again) == 52 and len(again.keys()) == 52
    assert again.search("TLS handshake failures", k=1, kinds={"incident"})[0].key == "incident:107"


def test_queries_through_onnx_runtime_match_torch(tmp_path):
    """The int8 ONNX query encoder (the default on CPUs) gives nearly the torch vector and the same ranking; the
    exported model is cached and reused; "torch" is the plain path; an unknown runtime is refused."""
    import os

    import numpy as np

    from summarizer.embeddings import Embedder

    emb = Embedder()
    assert emb.use_query_runtime("onnx-int8", tmp_path) == "onnx-int8"
    cached = sorted(tmp_path.iterdir())
    assert [p.suffix for p in cached] == [".onnx", ".onnx"]
    mtimes = [os.stat(p).st_mtime_ns for p in cached]
    queries = ["disk almost full on db-01.prod", "TLS certificate expires in 3 days", "checkout 500s after deploy"]
    ref = emb.encode(queries)
    got = np.concatenate([emb.encode_query(q) for q in queries])
    assert got.shape == (3, emb.dim) and got.dtype == np.float32
    assert ((got * ref).sum(axis=1) > 0.98).all()
    assert ((got @ ref.T).argmax(axis=1) == [0, 1, 2]).all()
    assert emb.use_query_runtime("onnx", tmp_path) == "onnx"
    assert ((emb.encode_query(queries[0]) * ref[0]).sum() > 0.9999)
    assert emb.use_query_runtime("onnx-int8", tmp_path) == "onnx-int8"
    assert [os.stat(p).st_mtime_ns for p in cached] == mtimes  # reused, not exported again
    assert emb.use_query_runtime("torch", tmp_path) == "torch"
    assert np.array_equal(emb.encode_query(queries[0]), emb.encode(queries[:1]))
    with pytest.raises(ValueError, match="unknown query runtime"):
        emb.use_query_runtime("tensorrt", tmp_path)


def test_search_uses_the_query_runtime(embedder, tmp_path):
    idx = VectorIndex(tmp_path / "idx", embedder)
    idx.upsert(_docs())
    # the default: onnxruntime's int8 on a CPU (installed with the cpu extra), torch on a GPU
    assert embedder.query_runtime == ("onnx-int8" if embedder.device == "cpu" else "torch")
    assert idx.search("certificate expired, renew it", k=1)[0].key == "runbook:certificate-expiry.md#mitigation"
