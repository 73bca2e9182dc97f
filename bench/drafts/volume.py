"""Drafts at real incident volume: scenarios of 3,000-20,000 alerts, logs and changes (volume_scenarios.py, facts
of public postmortems in our own words) go through the real consumers (redaction, templates, signatures,
correlation) into a fresh database, then the summarizer drafts each incident's timeline and postmortem.

    .venv/bin/python bench/drafts/volume.py [--model none|smollm2|qwen2.5-coder-1.5b] [--only NAME]

Prints per scenario and in total: incidents made per real incident (target 1), key events on the timeline at
the right minute (>= 0.9), timeline lines (<= 40), trigger and resolution named (>= 4 of 5), impact window
right to the minute, unsupported claims after the checker (0 in timelines, < 2% of prose claims), ingest and
draft wall time (a 20,000-event incident drafted in <= 60 s).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from volume_scenarios import all_scenarios, score_named, score_timeline  # noqa: E402

from consumers.worker import Dispatcher  # noqa: E402
from opsdraft.bus import Message  # noqa: E402
from opsdraft.db import Database, migrate  # noqa: E402
from opsdraft.events import DraftRequest  # noqa: E402
from opsdraft.models import Incident  # noqa: E402
from opsdraft.privacy import get_redactor  # noqa: E402
from opsdraft.runtime import Runtime  # noqa: E402
from opsdraft.settings import load_settings  # noqa: E402
from summarizer.checker import extract_claims  # noqa: E402

BATCH = 500  # what one consumer fetch holds


def ingest(rt: Runtime, messages: list[dict]) -> float:
    dispatch, topics = Dispatcher(rt), rt.settings.topics
    started = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        parsed = [dispatch.parse(Message(getattr(topics, m["topic"]), 0, i + n, None,
                                         json.dumps(m["value"]).encode(), {}))
                  for n, m in enumerate(messages[i:i + BATCH])]
        with rt.db.session() as s:
            dispatch.apply_many(s, parsed)
    with rt.db.session() as s:  # the quiet period passes after the last event
        last = max(_time(m) for m in messages)
        dispatch.ingest.close_quiet_incidents(s, last + timedelta(seconds=rt.settings.incident_quiet_period_s + 1))
    return time.perf_counter() - started


def _time(m: dict) -> datetime:
    v = m["value"]
    raw = v.get("timestamp") or v.get("at") or max(a["startsAt"] for a in v["alerts"])
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def section(body: str, name: str) -> str:
    m = re.search(rf"^## {name}\s*\n(.*?)(?=^## |\Z)", body, flags=re.M | re.S)
    return m.group(1).strip() if m else ""


def minute(iso: str | None) -> str:
    return iso[:16] if iso else "-"


def run_one(sc: dict, model: str, summarizer_cls, tmp: Path) -> dict:
    url = f"sqlite:///{tmp}/{sc['name']}.db"
    migrate(url)
    settings = load_settings(data_dir=tmp / "data", database_url=url, model=model, redaction_mode="patterns")
    rt = Runtime(settings=settings, db=Database(url), bus=None, redactor=get_redactor(settings))
    ingest_s = ingest(rt, sc["messages"])
    summarizer = summarizer_cls(settings)
    with rt.db.session() as s:
        incidents = list(s.query(Incident).order_by(Incident.id))
        main = max(incidents, key=lambda i: len(i.alerts))
        t = time.perf_counter()
        timeline = summarizer.make(s, DraftRequest(kind="timeline", subject_type="incident", subject_id=main.id))
        postmortem = summarizer.make(s, DraftRequest(kind="postmortem", subject_type="incident",
                                                     subject_id=main.id))
        draft_s = time.perf_counter() - t
    truth, a = sc["truth"], timeline.analysis
    lines = [x for x in timeline.body.splitlines() if x.startswith("- ")]
    keys = score_timeline(lines, truth)
    prose = " ".join(section(postmortem.body, n) for n in ("Summary", "Root cause", "Lessons learned"))
    return dict(
        name=sc["name"], events=len(sc["messages"]), incidents=len(incidents), keys=keys, lines=len(lines),
        # only the named trigger counts, not the less likely candidates listed under it
        trigger=score_named(section(postmortem.body, "Trigger").split("\n- Less likely")[0], truth["trigger"]),
        resolution=score_named(section(postmortem.body, "Resolution"), truth["resolution"]),
        start_ok=minute(a.get("impact_start")) == minute(truth["impact_start"]),
        end_ok=minute(a.get("impact_end")) == minute(truth["impact_end"]),
        tl_bad=len(timeline.unsupported_claims), prose_claims=len(extract_claims(prose)),
        prose_bad=len([c for c in postmortem.unsupported_claims if not c.startswith("removed")]),
        bad_claims=[c for c in postmortem.unsupported_claims if not c.startswith("removed")],
        removed=len([c for c in postmortem.unsupported_claims if c.startswith("removed")]),
        ingest_s=ingest_s, draft_s=draft_s, timeline=timeline.body, postmortem=postmortem.body,
        impact=(a.get("impact_start"), a.get("impact_end")), truth_impact=(truth["impact_start"], truth["impact_end"]),
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--only", help="run one scenario by name")
    ap.add_argument("--show", action="store_true", help="print each timeline and postmortem")
    args = ap.parse_args()
    from summarizer.worker import Summarizer

    scenarios = [sc for sc in all_scenarios() if not args.only or sc["name"] == args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # The summarizer role loads its model before it takes requests: so does this bench (not timed per draft).
        t = time.perf_counter()
        Summarizer(load_settings(data_dir=Path(tmp) / "data", model=args.model)).generator()
        print(f"model: {args.model} (loaded in {time.perf_counter() - t:.1f}s)\n")
        print(f"{'scenario':28s} {'events':>6s} {'inc':>3s} {'keyev':>6s} {'lines':>5s} {'trig':>4s} {'res':>4s} "
              f"{'start':>5s} {'end':>4s} {'tl-bad':>6s} {'prose':>7s} {'ingest':>7s} {'draft':>6s}")
        for sc in scenarios:
            r = run_one(sc, args.model, Summarizer, Path(tmp))
            rows.append(r)
            k = r["keys"]
            print(f"{r['name']:28s} {r['events']:6d} {r['incidents']:3d} {k['found']:>2d}/{k['total']:<3d} "
                  f"{r['lines']:5d} {'yes' if r['trigger'] else 'no':>4s} {'yes' if r['resolution'] else 'no':>4s} "
                  f"{'ok' if r['start_ok'] else 'off':>5s} {'ok' if r['end_ok'] else 'off':>4s} {r['tl_bad']:6d} "
                  f"{r['prose_bad']:>3d}/{r['prose_claims']:<3d} {r['ingest_s']:6.1f}s {r['draft_s']:5.1f}s")
            if r["bad_claims"]:
                print(f"  unsupported: {r['bad_claims']}")
            if args.show or not (r["trigger"] and r["resolution"]):
                print(f"  missing key events: {k['missing']}\n  impact {r['impact']} truth {r['truth_impact']}")
            if args.show:
                print(r["timeline"], "\n", r["postmortem"], sep="\n")
    n = len(rows)
    keys = sum(r["keys"]["found"] for r in rows), sum(r["keys"]["total"] for r in rows)
    claims = sum(r["prose_claims"] for r in rows)
    print(f"\nincidents per real incident: {sum(r['incidents'] for r in rows) / n:.2f} (target 1)")
    print(f"key events at the right minute: {keys[0]}/{keys[1]} = {keys[0] / max(keys[1], 1):.2f} (target >= 0.9)")
    print(f"timeline lines: max {max(r['lines'] for r in rows)} (target <= 40)")
    print(f"trigger named: {sum(r['trigger'] for r in rows)}/{n}; resolution named: "
          f"{sum(r['resolution'] for r in rows)}/{n} (target >= 4 of 5)")
    print(f"impact window right to the minute: start {sum(r['start_ok'] for r in rows)}/{n}, "
          f"end {sum(r['end_ok'] for r in rows)}/{n}")
    print(f"unsupported after the checker: timelines {sum(r['tl_bad'] for r in rows)} (target 0), prose "
          f"{sum(r['prose_bad'] for r in rows)}/{claims} claims (target < 2%); sentences removed by the checks: "
          f"{sum(r['removed'] for r in rows)}")
    print(f"draft wall time (timeline + postmortem): max {max(r['draft_s'] for r in rows):.1f}s (target <= 60 s); "
          f"ingest {sum(r['events'] for r in rows) / sum(r['ingest_s'] for r in rows):,.0f} events/s in this run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
