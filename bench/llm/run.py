"""Model speed benchmark: decode tokens/s against the memory-bandwidth bound, and time to draft.

    .venv/bin/python bench/llm/run.py [--model smollm2|qwen2.5-coder-1.5b|PATH] [--tokens 96] [--dtype int8]

Decoding one token reads every weight once, so tokens/s <= read bandwidth / weight bytes. The bandwidth is
measured here with the same runtime (torch, same thread count) by summing a tensor far larger than the caches.
Plain decoding means the full-precision (float32) weights; bfloat16 and int8 (--dtype) are lighter formats. Every
run prints its format's bound and the plain (float32) bound from the same bandwidth figure, then greedy decoding,
prompt-lookup decoding (--lookup lengths; same output, fewer forward passes), assisted decoding with a small
model proposing tokens (--assistant smollm2; same output), a batch of four drafts, and the time
to draft the demo postmortem (bad deploy of checkout) and a ticket reply, with the draft's tokens/s including the
prompt.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "drafts"))

from scenarios import SCENARIOS, TICKETS  # noqa: E402

from summarizer.cpukernels import decode_weight_bytes, layer_decode_bytes  # noqa: E402
from summarizer.llm import load_generator  # noqa: E402
from summarizer.postmortem import _postmortem_prompt, build_postmortem  # noqa: E402
from summarizer.ticket_reply import build_ticket_reply  # noqa: E402


def read_bandwidth_gbs(torch, size_mb: int = 1024, repeats: int = 5) -> float:
    x = torch.ones(size_mb * (1 << 20) // 4, dtype=torch.float32)
    x.sum()  # touch the pages once
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best / 1e9


def linear_layers(torch, model) -> list[tuple[object, int]]:
    """(layer, bytes of weight one decoding step reads from it) for every linear layer."""
    return [(m, layer_decode_bytes(m)) for m in model.modules() if isinstance(m, torch.nn.Linear)]


def gemv_bandwidth_gbs(torch, model, sweeps: int = 5) -> float:
    """Weight bytes per second that the runtime's own matrix-vector kernels read, over every linear layer but
    the output head in turn (as one token's decoding does, so no layer is still in the cache when its turn
    comes). Decoding is mostly these products: this is the ceiling this runtime reaches on this CPU, however
    fast the memory is."""
    head = model.get_output_embeddings()
    layers = [(m, b) for m, b in linear_layers(torch, model) if m is not head]
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())  # the activations' dtype
    inputs = [torch.randn(1, m.in_features, dtype=dtype) for m, _ in layers]
    best = float("inf")
    with torch.inference_mode():
        for _ in range(sweeps):
            t = time.perf_counter()
            for (m, _), x in zip(layers, inputs, strict=True):
                m(x)
            best = min(best, time.perf_counter() - t)
    return sum(b for _, b in layers) / best / 1e9


def decode(gen, messages, tokens: int, lookup: int) -> tuple[float, int, str]:
    """Decode tokens/s, prompt processing excluded: (n - 1) tokens over (time for n - time for 1)."""
    gen.prompt_lookup = lookup
    first = []
    for _ in range(2):
        t = time.perf_counter()
        gen.generate(messages, max_new_tokens=1)
        first.append(time.perf_counter() - t)
    t = time.perf_counter()
    out = gen.generate(messages, max_new_tokens=tokens)
    full = time.perf_counter() - t
    n = gen.last_new_tokens
    return (n - 1) / max(full - min(first), 1e-9), n, out


def batched(gen, prompts, tokens: int) -> tuple[float, int]:
    """Aggregate decode tokens/s of concurrent requests (HFGenerator batches them): all new tokens over the
    wall time, less one prompt pass (measured alone, as in decode())."""
    import threading

    t = time.perf_counter()
    gen.generate(prompts[0], max_new_tokens=1)
    first = time.perf_counter() - t
    counts: list[int] = []

    def one(p):  # new tokens counted by tokenizing each answer again
        counts.append(len(gen.tokenizer(gen.generate(p, max_new_tokens=tokens))["input_ids"]))

    threads = [threading.Thread(target=one, args=(p,)) for p in prompts]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    return sum(counts) / max(wall - first, 1e-9), sum(counts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--dtype", default=None,
                    help="float32, bfloat16, int8 (CPU) or int4 (CPU); default: int4 on a CPU, bf16 on a GPU")
    ap.add_argument("--lookup", default="3,10", help="prompt-lookup lengths to measure, comma-separated")
    ap.add_argument("--assistant", default="",
                    help="a small model for assisted decoding (e.g. smollm2), measured against plain decoding")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "opsdraft-test-models")
    args = ap.parse_args()
    import torch

    gen = load_generator(args.model, args.cache_dir, dtype=args.dtype)
    if gen is None or not hasattr(gen, "model"):
        print("SKIP: bench/llm measures an in-process transformers model")
        return 0
    weights = decode_weight_bytes(gen.model)
    # tied input/output embeddings are stored once but the embedding lookup reads one row, not the table
    emb = gen.model.get_input_embeddings().weight
    tied = emb is gen.model.get_output_embeddings().weight
    per_token = weights if tied else weights - emb.numel() * emb.element_size()
    bw = read_bandwidth_gbs(torch)
    bound = bw * 1e9 / per_token
    # Plain decoding is the full-precision (float32) model; bf16, int8 and int4 are the lighter formats. Its bound
    # is the yardstick every mode's drafting speed is compared with.
    n_params = sum(p.numel() for p in {id(p): p for p in gen.model.parameters()}.values())
    fp32_bound = bw * 1e9 / (n_params * 4 if tied else (n_params - emb.numel()) * 4)
    print(f"model {gen.name}; torch threads {torch.get_num_threads()} of {os.cpu_count()} cores")
    kernel = gemv_bandwidth_gbs(torch, gen.model)
    kernel_bound = kernel * 1e9 / per_token
    print(f"weights read per token {per_token / 1e6:.0f} MB; measured read bandwidth {bw:.1f} GB/s; "
          f"bound {bound:.1f} tokens/s; plain (float32) decoding bound {fp32_bound:.1f} tokens/s")
    fmt = gen.name.rsplit(", ", 1)[-1].rstrip(")")
    print(f"the runtime's matrix-vector kernel ({fmt}) reads weights at {kernel:.1f} GB/s here = "
          f"{kernel / bw:.2f} of the bandwidth: a kernel ceiling of {kernel_bound:.1f} tokens/s")
    facts = SCENARIOS[0][1]
    messages = _postmortem_prompt(facts, [])
    decode(gen, messages, 8, 0)  # warm up
    print(f"(machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other work shares the CPU)")
    plain, n_plain, text_plain = decode(gen, messages, args.tokens, 0)
    print(f"greedy decoding ({fmt}): {plain:.1f} tokens/s ({n_plain} tokens) = {plain / bound:.2f} of this "
          f"format's bound (target >= 0.70 for plain float32), {plain / kernel_bound:.2f} of the kernel ceiling, "
          f"{plain / fp32_bound:.2f}x the plain-decoding bound")
    lookups = [int(n) for n in args.lookup.split(",") if n.strip()]
    for n in lookups:
        lookup, n_lookup, text_lookup = decode(gen, messages, args.tokens, n)
        same = "same output" if text_lookup == text_plain else "OUTPUT DIFFERS"
        print(f"prompt-lookup decoding ({n} tokens): {lookup:.1f} tokens/s ({n_lookup} tokens) = "
              f"{lookup / bound:.2f} of the bound, {lookup / max(plain, 1e-9):.2f}x plain, "
              f"{lookup / fp32_bound:.2f}x the plain-decoding bound, {same}")
    gen.prompt_lookup = 0
    if args.assistant:
        gen.assistant = load_generator(args.assistant, args.cache_dir, dtype="float32")
        rate, n_assisted, text_assisted = decode(gen, messages, args.tokens, 0)
        same = "same output" if text_assisted == text_plain else "OUTPUT DIFFERS"
        print(f"assisted decoding ({gen.assistant.name} proposes): {rate:.1f} tokens/s ({n_assisted} tokens) = "
              f"{rate / max(plain, 1e-9):.2f}x plain, {rate / fp32_bound:.2f}x the plain-decoding bound, {same}")
        gen.assistant = None
    batch_rate, n_batch = batched(gen, [_postmortem_prompt(f, []) for _, f, *_ in SCENARIOS[:4]], args.tokens)
    print(f"4 concurrent drafts, batched: {batch_rate:.1f} tokens/s in all ({n_batch} tokens) = "
          f"{batch_rate / bound:.2f} of the one-sequence bound, {batch_rate / max(plain, 1e-9):.2f}x plain")
    for lookup in (0, *lookups):
        gen.prompt_lookup = lookup
        t = time.perf_counter()
        build_postmortem(facts, [], gen, max_new_tokens=args.tokens)
        pm = time.perf_counter() - t
        pm_rate = gen.last_new_tokens / pm
        t = time.perf_counter()
        build_ticket_reply(TICKETS[0][0], [], gen, max_new_tokens=args.tokens)
        reply = time.perf_counter() - t
        print(f"time to draft (prompt lookup {lookup:2d}): demo postmortem {pm:.1f}s ({pm_rate:.1f} tokens/s with "
              f"the prompt = {pm_rate / fp32_bound:.2f}x the plain-decoding bound), ticket reply {reply:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
