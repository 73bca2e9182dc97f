"""Draft quality benchmark: five incident scenarios and tickets with known answers, through the real pipeline.

    .venv/bin/python bench/drafts/run.py [--model smollm2|none|qwen2.5-coder-1.5b|PATH|URL] [--max-new-tokens 120]

Retrieval is the real hybrid index over runbooks/, drafts come from summarizer.timeline, summarizer.postmortem and
summarizer.ticket_reply with the chosen model.
Prints, per draft and in total: key events present in the timeline, claims the model wrote that its sources do
not support (before the checker) and claims left unsupported in the final draft (after it), section
completeness, citation validity, right answers for tickets, and latency.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from scenarios import SCENARIOS, TICKETS  # noqa: E402

from summarizer.checker import Corpus, extract_claims, unsupported_in  # noqa: E402
from summarizer.embeddings import get_embedder  # noqa: E402
from summarizer.facts import incident_sources, ticket_sources  # noqa: E402
from summarizer.index import VectorIndex, runbook_docs  # noqa: E402
from summarizer.llm import load_generator  # noqa: E402
from summarizer.postmortem import build_postmortem  # noqa: E402
from summarizer.prompts import UNSUPPORTED  # noqa: E402
from summarizer.ticket_reply import build_ticket_reply  # noqa: E402
from summarizer.timeline import build_timeline  # noqa: E402

SECTIONS = ["Summary", "Impact", "Timeline", "Root cause", "Trigger", "Resolution", "Detection", "Action items",
            "Lessons learned", "Sources"]


class Recording:
    """Passes calls to the real generator and keeps its raw output, to count claims before the checker."""

    def __init__(self, inner):
        self.inner, self.name, self.raw = inner, inner.name, ""

    def generate(self, messages, max_new_tokens=256):
        self.raw = ""
        self.raw = self.inner.generate(messages, max_new_tokens=max_new_tokens)
        return self.raw


def citations(body: str) -> list[str]:
    return re.findall(r"\[([a-z]+:[^\]\s]+)\]", body)


def sections(body: str) -> tuple[int, int]:
    """(sections present, sections with content other than the 'to be completed' placeholder)."""
    parts = re.split(r"^## ", body, flags=re.M)[1:]
    found = {p.split("\n", 1)[0].strip(): p.split("\n", 1)[1].strip() if "\n" in p else "" for p in parts}
    present = [s for s in SECTIONS if s in found]
    filled = [s for s in present if found[s] and found[s] != UNSUPPORTED]
    return len(present), len(filled)


def raw_unsupported(gen: Recording | None, corpus: Corpus) -> tuple[int, int]:
    if gen is None or not gen.raw:
        return 0, 0
    claims = extract_claims(gen.raw)
    return len(claims), sum(not corpus.supporting(c) for c in claims)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--max-new-tokens", type=int, default=120)
    ap.add_argument("--only", choices=["incidents", "tickets"], help="run one half (a slow model on a busy box)")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "opsdraft-test-models")
    args = ap.parse_args()
    inner = load_generator(args.model, args.cache_dir)
    gen = Recording(inner) if inner is not None else None
    emb = get_embedder()
    tot = dict(keys=0, keys_ok=0, tl_claims=0, tl_bad=0, raw=0, raw_bad=0, claims=0, bad=0, removed=0,
               sec=0, sec_present=0, sec_filled=0, cites=0, cites_ok=0, right_rb=0, right_answer=0, fallback=0)
    with tempfile.TemporaryDirectory() as tmp:
        index = VectorIndex(Path(tmp), emb)
        index.upsert(runbook_docs(ROOT / "runbooks"))
        print(f"model: {gen.name if gen else 'none'}; max_new_tokens {args.max_new_tokens}\n")
        print(f"{'draft':30s} {'keyev':>6s} {'raw':>8s} {'final':>8s} {'sect':>6s} {'cites':>6s} {'rb':>3s} "
              f"{'secs':>6s}")
        for name, facts, key_refs, runbook in SCENARIOS if args.only != "tickets" else []:
            t = time.perf_counter()
            timeline = build_timeline(facts)
            t_tl = time.perf_counter() - t
            ok = sum(f"[{r}]" in timeline.body for r in key_refs)
            n, bad = unsupported_in(timeline.body, Corpus(incident_sources(facts, [])))
            tot.update(keys=tot["keys"] + len(key_refs), keys_ok=tot["keys_ok"] + ok,
                       tl_claims=tot["tl_claims"] + n, tl_bad=tot["tl_bad"] + len(bad))
            print(f"{'timeline: ' + name:30s} {ok}/{len(key_refs):<4d} {'-':>8s} {len(bad)}/{n:<6d} {'-':>6s} "
                  f"{'-':>6s} {'-':>3s} {t_tl:6.2f}")
            t = time.perf_counter()
            query = f"{facts.title}\n" + "\n".join(e.text for e in facts.events[:20])
            hits = index.search(query, k=4, kinds={"runbook", "incident"})
            draft = build_postmortem(facts, hits, gen, max_new_tokens=args.max_new_tokens)
            report(tot, f"postmortem: {name}", draft, Corpus(incident_sources(facts, hits)), gen, runbook,
                   time.perf_counter() - t, allowed={*(e.ref for e in facts.events), *(h.key for h in hits),
                                                     f"incident:{facts.id}"})
        for ticket, runbook, answers in TICKETS if args.only != "incidents" else []:
            t = time.perf_counter()
            hits = index.search(f"{ticket.subject}\n{ticket.body}", k=4, kinds={"runbook", "ticket"})
            draft = build_ticket_reply(ticket, hits, gen, max_new_tokens=args.max_new_tokens)
            report(tot, f"reply: {ticket.key}", draft, Corpus(ticket_sources(ticket, hits)), gen, runbook,
                   time.perf_counter() - t, allowed={f"ticket:{ticket.key}", *(h.key for h in hits)})
            low = draft.body.lower()
            tot["right_answer"] += any(a in low for a in answers) and f"runbook:{runbook}" in " ".join(draft.sources)
    n_pm = len(SCENARIOS) if args.only != "tickets" else 0
    n_t = len(TICKETS) if args.only != "incidents" else 0
    print("\ntotals")
    print(f"  key events present in timelines: {tot['keys_ok']}/{tot['keys']} = "
          f"{tot['keys_ok'] / max(tot['keys'], 1):.3f}")
    print(f"  timelines: unsupported claims {tot['tl_bad']}/{tot['tl_claims']} (target 0)")
    print(f"  model output before the checker: {tot['raw_bad']}/{tot['raw']} claims unsupported"
          f" = {tot['raw_bad'] / max(tot['raw'], 1):.3f}; the checker removed {tot['removed']}")
    print(f"  postmortems + replies after the checker: {tot['bad']}/{tot['claims']} claims unsupported"
          f" = {tot['bad'] / max(tot['claims'], 1):.4f} (target < 0.02)")
    print(f"  postmortem sections present: {tot['sec_present']}/{tot['sec']}; with content beyond "
          f"'{UNSUPPORTED}': {tot['sec_filled']}/{tot['sec']}")
    print(f"  drafts where the model's text was unusable or fully removed (deterministic instead): {tot['fallback']}")
    print(f"  citations valid: {tot['cites_ok']}/{tot['cites']} = {tot['cites_ok'] / max(tot['cites'], 1):.3f}")
    print(f"  right runbook retrieved: {tot['right_rb']}/{n_pm + n_t}; tickets answered right "
          f"(right runbook cited and the answer's key phrase): {tot['right_answer']}/{n_t}")
    return 0


def report(tot: dict, label: str, draft, corpus: Corpus, gen, runbook: str, secs: float, allowed: set[str]) -> None:
    raw_n, raw_bad = raw_unsupported(gen, corpus)
    n, bad = unsupported_in(draft.body, corpus)
    cites = citations(draft.body)
    good = sum(c in allowed for c in cites)
    removed = sum(c.startswith("removed") for c in draft.unsupported_claims)
    tot["fallback"] += gen is not None and draft.model != gen.name  # the model's text was unusable or all removed
    right = any(s.startswith(f"runbook:{runbook}") for s in draft.sources)
    tot.update(raw=tot["raw"] + raw_n, raw_bad=tot["raw_bad"] + raw_bad, claims=tot["claims"] + n,
               bad=tot["bad"] + len(bad), removed=tot["removed"] + removed, cites=tot["cites"] + len(cites),
               cites_ok=tot["cites_ok"] + good, right_rb=tot["right_rb"] + right)
    sect = "-"
    if draft.kind == "postmortem":
        present, filled = sections(draft.body)
        tot.update(sec=tot["sec"] + len(SECTIONS), sec_present=tot["sec_present"] + present,
                   sec_filled=tot["sec_filled"] + filled)
        sect = f"{present}/{len(SECTIONS)}"
    print(f"{label:30s} {'-':>6s} {raw_bad}/{raw_n:<6d} {len(bad)}/{n:<6d} {sect:>6s} {good}/{len(cites):<4d} "
          f"{'y' if right else 'n':>3s} {secs:6.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
