"""Decoding speed on CPUs: float32 linear layers that read their weights at the memory's speed.

Decoding one token multiplies one activation row by every weight matrix, so its speed is set by how fast the
weights stream from memory. torch's float32 matrix-vector product runs on one core: on the 2-core dev box it
reads 15 GB/s of the ~22-27 GB/s the memory gives two cores. Its products of a few rows (prompt-lookup
verification, batched drafts) are worse still: 2 to 11 rows took 2-4x as long as one. Cut into row blocks and
run as one batched product, the same arithmetic spreads over every core: ~19 GB/s for one row, and 1.5-4x
faster for 2-128 rows, never slower for whole prompts (measured in bench/llm and by hand; see the README).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BLOCKS = 8  # row blocks per matrix: enough for the cores to share evenly, few enough to cost nothing


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """bfloat16 pays on CPUs with bf16 instructions (AVX512-BF16, AMX). Elsewhere torch converts every weight on
    the fly: on an AVX2 EPYC a 512-token prompt took 8x as long as in float32 and one token no less time."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:  # not Linux: float32 is the safe choice
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def blocked_linear(x: Any, weight: Any, blocks: int = BLOCKS) -> Any:
    """x @ weight.T as `blocks` batched products of `weight`'s row blocks (weight's rows divisible by blocks)."""
    import torch

    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)
    w3 = weight.view(blocks, out_features // blocks, in_features)
    # x transposed is (in_features, rows) with stride in_features: bmm's fast path for a transposed operand
    # (a contiguous column of one row takes a path 2x slower)
    y = torch.bmm(w3, rows.t().unsqueeze(0).expand(blocks, in_features, rows.shape[0]))
    return y.reshape(out_features, -1).t().reshape(*x.shape[:-1], out_features)


def use_blocked_linear(model: Any, blocks: int = BLOCKS) -> int:
    """Route the model's float32 CPU linear layers (output head included) through blocked_linear. Returns how
    many layers were routed. Same results up to the order of float additions."""
    import torch

    routed = 0
    for module in model.modules():
        w = getattr(module, "weight", None)
        if (not isinstance(module, torch.nn.Linear) or w is None or w.dtype != torch.float32
                or w.device.type != "cpu" or w.shape[0] % blocks or not w.is_contiguous()):
            continue
        module.forward = _forward(module, blocks)
        routed += 1
    return routed


def _forward(module: Any, blocks: int):
    def forward(x):
        y = blocked_linear(x, module.weight, blocks)
        return y if module.bias is None else y + module.bias

    return forward
