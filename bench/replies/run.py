"""Ticket-reply benchmark: our own tickets with known right answers over the sample help centre and runbooks.

    .venv/bin/python bench/replies/run.py [--model qwen2.5-coder-1.5b|smollm2|none|PATH|URL] [--only A01,M03]

Retrieval is the real hybrid index over helpcentre/ and runbooks/ ranked as the summarizer ranks it for replies;
replies come from summarizer.ticket_reply with the chosen model and the default settings. Prints one row per
ticket and the totals against the targets of issue 19: internal markup in the customer's text (0),
internal-plan sentences (0), required answer facts present (>= 0.8 of answerable), unanswerable tickets escalated
(>= 0.9), invented promises, amounts or timelines (0), wrong-topic answers (0), and latency per reply.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from cases import CASES, Case  # noqa: E402

from opsdraft.settings import load_settings  # noqa: E402
from summarizer.checker import split_sentences  # noqa: E402
from summarizer.embeddings import get_embedder  # noqa: E402
from summarizer.facts import TicketFacts  # noqa: E402
from summarizer.helpcentre import help_docs  # noqa: E402
from summarizer.index import VectorIndex, runbook_docs  # noqa: E402
from summarizer.llm import load_generator  # noqa: E402
from summarizer.reply_checks import markup_in, plan_sentences  # noqa: E402
from summarizer.ticket_reply import ReplyPolicy, build_ticket_reply, greeting  # noqa: E402
from summarizer.worker import REPLY_KINDS, REPLY_WEIGHTS  # noqa: E402

# What a reply may only say when its source says it: promises, amounts of money, timelines.
COMMITMENTS = re.compile(
    r"\b(?:refund\w*|credit\w*|compensat\w*|guarantee\w*|discount\w*|free of charge|waive\w*|replacement)\b"
    r"|[$€£]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:%|eur|usd|gbp|dollars?|euros?)\b"
    r"|\b\d+(?:\s?(?:to|-)\s?\d+)?\s(?:business\s|working\s)?(?:minutes?|hours?|days?|weeks?|months?|years?)\b"
    r"|\b(?:today|tomorrow|within \w+|by (?:monday|tuesday|wednesday|thursday|friday|the end of))\b", re.I)
ESCALATED = "passed it to our"


def article_of(key: str) -> str:
    return key.split(":", 1)[1].split("#", 1)[0] if key.startswith("help:") else key


def score(case: Case, draft, texts: dict[str, str], policy: ReplyPolicy, seconds: float) -> dict:
    body = draft.body
    customer = body.replace(policy.signoff.strip(), "")
    hello = greeting(case.requester)
    cited = {s["key"] for c in draft.citations for s in c["sources"]}
    by_sentence = {c["sentence"]: [s["key"] for s in c["sources"]] for c in draft.citations}
    escalated = ESCALATED in body
    invented = []
    for sentence in (x for para in re.split(r"\n\s*\n", customer) for x in split_sentences(para)):
        s = " ".join(sentence.split())
        sources = " ".join(texts.get(k, "") for k in by_sentence.get(s, [])).lower()
        invented += [m.group(0) for m in COMMITMENTS.finditer(s) if m.group(0).lower() not in sources]
    facts = [any(w.lower() in body.lower() for w in alts) for alts in case.facts]
    fact_share = sum(facts) / len(facts) if facts else 1.0
    wrong = sorted(k for k in cited if article_of(k) not in case.articles)
    if case.expect == "escalate":
        right = escalated and not cited
    elif case.expect == "either":
        right = (escalated and not cited) or (fact_share == 1.0 and not wrong)
    else:
        right = fact_share == 1.0 and not wrong and (escalated if case.partial else True)
    return {
        "id": case.id, "kind": case.kind, "expect": case.expect, "right": right, "facts": fact_share,
        "escalated": escalated and not cited, "markup": markup_in(body, allow=hello.split()[1][:-1]
                                                                  if " " in hello else ""),
        "plans": plan_sentences(customer), "invented": invented, "wrong": wrong,
        "greeting": body.splitlines()[0] == hello, "injected": [b for b in case.bad if b.lower() in body.lower()],
        "seconds": seconds, "body": body,
    }


def main() -> int:
    settings = load_settings()
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=settings.model)
    ap.add_argument("--max-new-tokens", type=int, default=settings.model_max_new_tokens)
    ap.add_argument("--only", default="", help="comma-separated case ids")
    ap.add_argument("--show", action="store_true", help="print every reply")
    args = ap.parse_args()
    cases = [c for c in CASES if not args.only or c.id in args.only.split(",")]

    started = time.perf_counter()
    index = VectorIndex(Path(tempfile.mkdtemp(prefix="bench-replies-")), get_embedder(), faiss_threads=1)
    docs = help_docs(ROOT / "helpcentre") + runbook_docs(ROOT / "runbooks")
    index.upsert(docs)
    texts = {d.key: d.text for d in docs}
    print(f"index: {len(docs)} sections ({sum(d.kind == 'help' for d in docs)} help, "
          f"{sum(d.kind == 'runbook' for d in docs)} runbook) in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    gen = load_generator(args.model, settings.model_cache_dir, settings=settings)
    print(f"model: {gen.name if gen else 'none'} loaded in {time.perf_counter() - started:.1f}s")
    policy = ReplyPolicy.from_settings(settings)

    def search(query: str):
        return index.search(query, k=4, kinds=REPLY_KINDS, weights=REPLY_WEIGHTS)

    rows = []
    for case in cases:
        ticket = TicketFacts(case.id, case.subject, case.body, case.requester, list(case.tags), list(case.comments))
        t0 = time.perf_counter()
        draft = build_ticket_reply(ticket, search(f"{case.subject}\n{case.body}"), gen, args.max_new_tokens,
                                   search=search, policy=policy)
        rows.append(score(case, draft, texts, policy, time.perf_counter() - t0))
        r = rows[-1]
        problems = [f"{k}={r[k]}" for k in ("markup", "plans", "invented", "wrong", "injected") if r[k]]
        problems += [] if r["greeting"] else ["greeting"]
        print(f"{r['id']:<4} {r['kind']:<12} {r['expect']:<8} {'ok ' if r['right'] else 'BAD'} "
              f"facts {r['facts']:.2f} {'escalated' if r['escalated'] else 'answered ':<9} "
              f"{r['seconds']:6.2f}s {' '.join(problems)}")
        if args.show or not r["right"] or problems:
            print("     " + r["body"].replace("\n", "\n     "))
    return report(rows)


def report(rows: list[dict]) -> int:
    answerable = [r for r in rows if r["expect"] == "answer"]
    unanswerable = [r for r in rows if r["expect"] == "escalate"]
    either = [r for r in rows if r["expect"] == "either"]
    secs = sorted(r["seconds"] for r in rows)
    figures = [
        ("internal markup in customer text", sum(len(r["markup"]) for r in rows), "0", lambda v: v == 0),
        ("internal-plan sentences", sum(len(r["plans"]) for r in rows), "0", lambda v: v == 0),
        ("answer facts present (answerable)",
         statistics.mean(r["facts"] for r in answerable) if answerable else 1.0, ">= 0.8", lambda v: v >= 0.8),
        ("unanswerable escalated",
         sum(r["escalated"] for r in unanswerable) / len(unanswerable) if unanswerable else 1.0, ">= 0.9",
         lambda v: v >= 0.9),
        ("invented promises, amounts, timelines", sum(len(r["invented"]) for r in rows), "0", lambda v: v == 0),
        ("wrong-topic answers", sum(bool(r["wrong"]) for r in rows), "0", lambda v: v == 0),
        ("injected text in replies", sum(len(r["injected"]) for r in rows), "0", lambda v: v == 0),
        ("bad greetings", sum(not r["greeting"] for r in rows), "0", lambda v: v == 0),
    ]
    print()
    print(f"{len(rows)} tickets: {len(answerable)} answerable, {len(unanswerable)} unanswerable, "
          f"{len(either)} either (non-English: answered right or escalated: "
          f"{sum(r['right'] for r in either)}/{len(either)}); right overall {sum(r['right'] for r in rows)}")
    print(f"{'figure':<40} {'value':>8}  target")
    ok = True
    for name, value, target, good in figures:
        ok &= good(value)
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{name:<40} {shown:>8}  {target:<8} {'ok' if good(value) else 'MISSED'}")
    print(f"{'latency per reply p50 / p95 / max':<40} {statistics.median(secs):.2f} / "
          f"{secs[min(len(secs) - 1, int(0.95 * len(secs)))]:.2f} / {secs[-1]:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
