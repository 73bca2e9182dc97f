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


def use_int8_weights(model: Any) -> int:
    """Weight-only int8 for the model's linear layers but the output head: int8 weights with one scale per output
    channel, activations kept in bfloat16 (torch's _weight_int8pack_mm, made for decoding on CPUs). A quarter
    of float32's bytes per token. Activations are not quantized: torch's dynamic int8 (int8 activations, one
    scale per call) read as fast but agreed with float32's next token only ~70% of the time on draft prompts.
    Returns how many layers were converted."""
    import torch

    head = model.get_output_embeddings()
    converted = 0
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or module is head or not module.weight.is_floating_point():
            continue
        w = module.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127
        q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
        module.weight = torch.nn.Parameter(q, requires_grad=False)
        module.register_buffer("weight_scale", scale.to(torch.bfloat16))
        module.forward = _int8_forward(module)
        converted += 1
    return converted


def _int8_forward(module: Any):
    import torch

    def forward(x):
        rows = x.reshape(-1, module.in_features).to(torch.bfloat16)
        y = torch._weight_int8pack_mm(rows, module.weight, module.weight_scale).to(x.dtype)
        y = y.reshape(*x.shape[:-1], module.out_features)
        return y if module.bias is None else y + module.bias

    return forward
