"""Does a lighter weight format still pick the tokens float32 picks? Next-token agreement on draft prompts.

    .venv/bin/python bench/llm/agreement.py [--model qwen2.5-coder-1.5b] [--dtype int4,int8,bfloat16] [--tokens 48]

float32 writes its answer to three draft prompts (two postmortems, one ticket reply). Each format then reads the
same prompt and answer one token at a time, as decoding does (so int4 and int8 go through their one-row kernels),
and the bench counts the positions where its most likely next token is float32's, with the mean KL divergence
from float32's distribution.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "drafts"))

from scenarios import SCENARIOS, TICKETS  # noqa: E402

from summarizer.llm import load_generator  # noqa: E402
from summarizer.postmortem import _postmortem_prompt  # noqa: E402
from summarizer.ticket_reply import _ticket_prompt  # noqa: E402


def stepwise_logits(torch, model, ids, n_prompt: int):
    """Next-token logits after the prompt and after each answer token, one token per step with the KV cache."""
    with torch.inference_mode():
        out = model(ids[:, :n_prompt], use_cache=True)
        past, rows = out.past_key_values, [out.logits[0, -1].float()]
        for t in range(n_prompt, ids.shape[1] - 1):
            out = model(ids[:, t:t + 1], past_key_values=past, use_cache=True)
            past = out.past_key_values
            rows.append(out.logits[0, -1].float())
    return torch.stack(rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--dtype", default="int4,int8,bfloat16", help="formats to compare with float32")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "opsdraft-test-models")
    args = ap.parse_args()
    import torch

    ref = load_generator(args.model, args.cache_dir, dtype="float32")
    if ref is None or not hasattr(ref, "model"):
        print("SKIP: agreement compares in-process transformers models")
        return 0
    prompts = [_postmortem_prompt(SCENARIOS[0][1], []), _postmortem_prompt(SCENARIOS[1][1], []),
               _ticket_prompt(TICKETS[0][0], [])]
    cases = []
    for messages in prompts:
        answer = ref.generate(messages, max_new_tokens=args.tokens)
        enc = ref._encode([messages])["input_ids"]
        ans = ref.tokenizer(answer, return_tensors="pt", add_special_tokens=False)["input_ids"]
        ids = torch.cat([enc, ans], dim=1)
        cases.append((ids, enc.shape[1], stepwise_logits(torch, ref.model, ids, enc.shape[1])))
    print(f"model {ref.name}; {len(cases)} draft prompts, float32's answers of up to {args.tokens} tokens")
    for dtype in [d.strip() for d in args.dtype.split(",") if d.strip()]:
        gen = load_generator(args.model, args.cache_dir, dtype=dtype)
        same = total = 0
        kl = 0.0
        for ids, n_prompt, want in cases:
            got = stepwise_logits(torch, gen.model, ids, n_prompt)
            same += int((got.argmax(-1) == want.argmax(-1)).sum())
            total += want.shape[0]
            p = torch.log_softmax(want, -1)
            kl += float((p.exp() * (p - torch.log_softmax(got, -1))).sum())
        print(f"{gen.name}: next token agrees with float32 at {same} of {total} positions "
              f"({same / total:.3f}); mean KL from float32 {kl / total:.4f} per token")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
