"""Decoding speed on CPUs: linear layers that read their weights at the memory's speed, or read fewer bytes.

Decoding one token multiplies one activation row by every weight matrix, so its speed is set by how fast the
weights stream from memory. torch's float32 matrix-vector product runs on one core: on a 2-core AVX2 EPYC it
read 15 GB/s of the ~22-27 GB/s the memory gives two cores. Its products of a few rows (prompt-lookup
verification, batched drafts) are worse still: 2 to 11 rows took 2-4x as long as one. Cut into row blocks and
run as one batched product, the same arithmetic spreads over every core: ~19 GB/s for one row, and 1.5-4x
faster for 2-128 rows, never slower for whole prompts (measured in bench/llm and by hand; see the README).
CPUs differ (on a later Xeon torch's own one-row product read 30 GB/s and the blocked one 15), so each layout is
timed once at load and a layer is routed only where it is faster on this CPU.

Lighter formats: int4 keeps weights that were 4-bit in the model file (GGUF Q4_K, Q4_0, Q4_1) 4-bit, exactly
(use_int4_weights); int8 rounds every weight to 8 bits (use_int8_weights).
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


FEW_ROWS = 32  # up to this many rows (decoding, prompt-lookup checks, small batches) a product reads weights;
# beyond it (prompts) it is arithmetic, where torch's own kernels (oneDNN, AMX) are the fast ones


def use_blocked_linear(model: Any, blocks: int = BLOCKS, *, tune: bool = True) -> int:
    """Route the model's float32 and bfloat16 CPU linear layers (output head included) through blocked_linear for
    products of few rows, where that is faster on this CPU: timed once for each weight shape and dtype, over the
    layers of that shape in turn as decoding reads them (tune=False routes without timing). Returns how many
    layers were routed. Same results up to the order of additions."""
    import torch

    groups: dict[tuple, list[Any]] = {}
    for m in model.modules():
        if (isinstance(m, torch.nn.Linear) and "forward" not in vars(m) and m.weight.device.type == "cpu"
                and m.weight.dtype in (torch.float32, torch.bfloat16) and m.weight.shape[0] % blocks == 0
                and m.weight.is_contiguous()):
            groups.setdefault((m.weight.dtype, tuple(m.weight.shape)), []).append(m)
    routed = 0
    for layers in groups.values():
        weights = [m.weight for m in layers[:16]]
        one, few = (True, True) if not tune else (_faster(weights, 1, blocks), _faster(weights, 8, blocks))
        if not (one or few):
            continue
        for module in layers:
            module.forward = _forward(module, blocks, one, few)
            routed += 1
    return routed


def _faster(weights: list[Any], rows: int, blocks: int, repeats: int = 3) -> bool:
    """Whether blocked_linear beats torch's product for `rows` rows on this CPU: best of `repeats` sweeps over
    these weights in turn (cold in the caches, as in decoding)."""
    import torch

    x = torch.randn(rows, weights[0].shape[1], dtype=weights[0].dtype)
    with torch.inference_mode():
        blocked = _best_sweep([lambda w=w: blocked_linear(x, w, blocks) for w in weights], repeats)
        return blocked < 0.95 * _best_sweep([lambda w=w: torch.nn.functional.linear(x, w) for w in weights], repeats)


def _best_sweep(calls: list[Any], repeats: int) -> float:
    """Best time of `repeats` sweeps through calls, in turn, after one sweep that warms up."""
    import time

    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        for call in calls:
            call()
        times.append(time.perf_counter() - t)
    return min(times[1:])


def _forward(module: Any, blocks: int, one: bool, few: bool):
    import torch

    def forward(x):
        rows = x.numel() // module.in_features
        if (one and rows == 1) or (few and 1 < rows <= FEW_ROWS):
            y = blocked_linear(x, module.weight, blocks)
            return y if module.bias is None else y + module.bias
        return torch.nn.functional.linear(x, module.weight, module.bias)

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


INT4_GROUP = 32  # weights per scale: GGUF's 4-bit blocks (Q4_0, Q4_1, Q4_K's sub-blocks) hold 32
INT4_ROWS = 4  # the int4 kernel is fastest up to 4 rows (one token, or a 3-token prompt-lookup check); more rows
# (prompts, longer checks, batches) use the layer's full-precision copy, where torch's kernels do the arithmetic


def int4_grid(weight: Any, group: int = INT4_GROUP) -> tuple[Any, Any, Any] | None:
    """The 4-bit grid a weight matrix was dequantized from, when it has one: (levels 0..15 as int32, step, low),
    with weight == levels * step + low in every group of `group` consecutive weights of a row. None when any
    group is not on at most 16 evenly spaced levels (the weight was not 4-bit, e.g. GGUF's 6-bit Q6_K)."""
    import torch

    w = weight.detach().float()
    if w.dim() != 2 or w.shape[1] % group:
        return None
    if w.shape[0] > 64 and _grid_rows(w[:: w.shape[0] // 32][:32], group) is None:  # rows across it first: cheap
        return None
    parts = []
    for start in range(0, w.shape[0], 1024):  # row chunks stay in the caches: 2x faster than whole matrices
        part = _grid_rows(w[start:start + 1024], group)
        if part is None:
            return None
        parts.append(part)
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def _grid_rows(w: Any, group: int) -> tuple[Any, Any, Any] | None:
    import torch

    g = w.reshape(w.shape[0], -1, group)
    low, high = g.amin(-1), g.amax(-1)
    span = high - low
    off = g - low[..., None]
    # most groups of a 4-bit weight use all 16 levels: try 15 steps between the extremes on every group at once
    step = span / 15
    found = ((torch.round(off / step[..., None]) * step[..., None] - off).abs().amax(-1) <= step * 1e-3) | (span == 0)
    step = torch.where(span == 0, torch.zeros_like(step), step)  # a constant group: level 0, step 0
    # the rest: fewer steps; every group is exact at its true count (or a multiple of it that fits in 15)
    for steps in range(14, 0, -1):
        todo = ~found
        if not todo.any():
            break
        idx = todo.nonzero(as_tuple=True)
        s, o = span[idx] / steps, off[idx]
        exact = (torch.round(o / s[:, None]) * s[:, None] - o).abs().amax(-1) <= s * 1e-3
        hit = tuple(i[exact] for i in idx)
        step[hit] = s[exact]
        found[hit] = True
    if not found.all():
        return None
    divisor = torch.where(span == 0, torch.ones_like(step), step)
    levels = torch.round(off / divisor[..., None]).to(torch.int32).reshape(w.shape)
    return levels, step, low


def use_int4_weights(model: Any, dtype: Any) -> int:
    """Keep every linear layer whose weights lie on a 4-bit grid (int4_grid) 4-bit: decoding reads them through
    torch's int4 kernel (_weight_int4pack_mm_for_cpu: an eighth of float32's bytes, bfloat16 activations),
    exactly the model file's weights but for rounding the scales to bfloat16. The layer also keeps its weight in
    `dtype` (bfloat16 where the CPU computes it, else float32) for prompts, and the rest of the model (6-bit
    layers, the output head, norms) is `dtype` too. Returns how many layers went 4-bit."""
    import torch

    packed = {}
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or module.weight.device.type != "cpu":
            continue
        if module.weight.shape[0] % 16:  # the kernel's packing works on 16 output rows at a time
            continue
        grid = int4_grid(module.weight)
        if grid is None:
            continue
        levels, step, low = grid
        pack = torch.ops.aten._convert_weight_to_int4pack_for_cpu(levels, 1)
        # the kernel computes (level - 8) * scale + zero, with scales and zeros as (groups, out_features, 2)
        scales_zeros = torch.stack([step, low + 8 * step], dim=-1).transpose(0, 1).contiguous()
        packed[module] = (pack, scales_zeros.to(torch.bfloat16))
    model.to(dtype)
    for module, (pack, scales_zeros) in packed.items():
        module.register_buffer("int4_weight", pack)
        module.register_buffer("int4_scales_zeros", scales_zeros)  # after .to(dtype): stays bfloat16
        module.forward = _int4_forward(module)
    return len(packed)


def _int4_forward(module: Any):
    import torch

    def forward(x):
        rows = x.reshape(-1, module.in_features)
        if rows.shape[0] > INT4_ROWS:
            return torch.nn.functional.linear(x, module.weight, module.bias)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            rows.to(torch.bfloat16), module.int4_weight, INT4_GROUP, module.int4_scales_zeros
        ).to(x.dtype).reshape(*x.shape[:-1], module.out_features)
        return y if module.bias is None else y + module.bias

    return forward


def decode_weight_bytes(model: Any) -> int:
    """Bytes of weights one decoding step reads: every parameter once (tied ones too), with 4-bit layers counted
    as their packed weights and scales instead of their full-precision prompt copies."""
    import torch

    total, seen = 0, set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:  # tied weights (input embeddings and output head) are one tensor
                continue
            seen.add(id(p))
            if name == "weight" and isinstance(module, torch.nn.Linear):
                total += layer_decode_bytes(module)
            else:
                total += p.numel() * p.element_size()
    return total


def layer_decode_bytes(module: Any) -> int:
    """Bytes of weight one decoding step reads from a linear layer."""
    if hasattr(module, "int4_weight"):
        return module.int4_weight.numel() + module.int4_scales_zeros.numel() * 2
    return module.weight.numel() * module.weight.element_size()


def rows_cost_ratio(model: Any, rows: int = 4, repeats: int = 3) -> float:
    """How much longer every linear layer of the model takes, in turn, for `rows` rows than for one: what checking
    `rows` tokens at once (prompt lookup) costs against decoding one, on this CPU with these kernels."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not layers:
        return float("inf")
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())

    def sweep(n: int) -> list[Any]:
        return [lambda m=m, x=torch.randn(n, m.in_features, dtype=dtype): m(x) for m in layers]

    with torch.inference_mode():
        return _best_sweep(sweep(rows), repeats) / _best_sweep(sweep(1), repeats)
