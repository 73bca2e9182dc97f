"""Search queries embedded through ONNX Runtime: the same MiniLM, exported once and cached, int8 by default.

A query is one short text (alert rules here: ~70 tokens), where torch's per-operator overhead is most of the
cost: on the 2-core dev box sentence-transformers took 24-37 ms per query at p50, ONNX Runtime in float32 about
2/3 of that, and with int8 weights (one scale per output channel) less than half, with cosine >= 0.99 to the
float32 vector (bench/retrieval prints both in the same run). Documents are still embedded in float32 by torch,
in batches, where the overhead is spread thin.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np


class OnnxQueryEncoder:
    def __init__(self, model: Any, cache_dir: Path, int8: bool = True):
        import onnxruntime as ort
        import torch

        self.tokenizer = model.tokenizer
        self.max_length = int(model.max_seq_length)
        path = _exported(model, Path(cache_dir).expanduser(), int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, text: str) -> np.ndarray:
        enc = self.tokenizer([text], return_tensors="np", truncation=True, max_length=self.max_length)
        feed = {k: v.astype(np.int64) for k, v in enc.items() if k in self.inputs}
        hidden = self.session.run(None, feed)[0]
        # sentence-transformers' pipeline for this model: mean over the real tokens, then L2 normalisation
        mask = enc["attention_mask"][..., None].astype(np.float32)
        vec = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vec, dtype=np.float32)


def _exported(model: Any, cache_dir: Path, int8: bool) -> Path:
    """The model as ONNX under cache_dir (int8: quantized copy), made once; keyed by the weights' digest."""
    transformer = model[0].auto_model
    digest = hashlib.sha256()
    for name, tensor in sorted(transformer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[:1024].cpu().numpy().tobytes())  # enough to tell models apart
    stem = f"query-encoder-{digest.hexdigest()[:12]}"
    fp32, q8 = cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.int8.onnx"
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Exporting and quantizing warn about tracing and pre-processing, which do not apply to this model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not fp32.exists():
            _atomic(fp32, lambda tmp: _export(transformer, model.tokenizer, tmp))
        if int8 and not q8.exists():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quiet = logging.Filter("no-records")  # onnxruntime logs its advice on the root logger
            logging.getLogger().addFilter(quiet)
            try:
                _atomic(q8, lambda tmp: quantize_dynamic(str(fp32), str(tmp), per_channel=True,
                                                         weight_type=QuantType.QInt8))
            finally:
                logging.getLogger().removeFilter(quiet)
    return q8 if int8 else fp32


def _atomic(target: Path, write) -> None:
    """Write to a temporary file beside target, then rename: a crash never leaves half a model."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _export(transformer: Any, tokenizer: Any, path: Path) -> None:
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = tokenizer(["a query"], return_tensors="pt")
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(LastHidden(transformer.eval()), tuple(sample[n] for n in names), str(path),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
