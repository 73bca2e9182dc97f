"""Soak: push a million log lines through the consumers' real ingest path (parse, redact, template, store: the
Dispatcher's apply_many on batches of 500, one transaction each, as the consumer applies a fetched batch), then
run one retention pass, and print the database's row counts and size before and after. The lines carry one
distinct e-mail address in four, so log scopes' placeholders grow as a busy service's would.

    .venv/bin/python bench/soak/run.py [--lines 1000000] [--db sqlite,postgres] [--days 30]
                                       [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

The lines are spread evenly over the last `--days` days, five services; a few incidents (opened by alerts among
the lines) hold the lines around them, which retention keeps. On PostgreSQL the run uses a database of its own
(soak_<random>), dropped afterwards. Figures are this machine's, measured in this run."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import func, select, text, update  # noqa: E402

from consumers.retention import purge  # noqa: E402
from consumers.worker import Dispatcher  # noqa: E402
from opsdraft.bus import Message  # noqa: E402
from opsdraft.db import Database, migrate  # noqa: E402
from opsdraft.models import Base, Outbox, utcnow  # noqa: E402
from opsdraft.privacy import get_redactor  # noqa: E402
from opsdraft.runtime import Runtime  # noqa: E402
from opsdraft.settings import load_settings  # noqa: E402

SERVICES = ["checkout", "payments", "search", "orders-db", "auth"]
BATCH = 500
INCIDENTS = 12  # alerts among the lines, spread over the whole span: their incidents hold lines of every age
RESOLVE_AFTER = 2_000


def batches(n: int, days: float, topics) -> list[Message]:
    """Messages as the consumer gets them, oldest first, BATCH at a time."""
    start = utcnow() - timedelta(days=days)
    step = timedelta(days=days) / n
    every = n // INCIDENTS
    resolve_after = max(1, min(RESOLVE_AFTER, every // 3))  # within the alert's own stretch of lines
    for lo in range(0, n, BATCH):
        out = []
        for i in range(lo, min(n, lo + BATCH)):
            at, svc = start + step * i, SERVICES[i % 5]
            # An alert fires, and resolves up to RESOLVE_AFTER lines later: its incident holds its service's lines
            # from shortly before it opened until it closed.
            fire = i - (i % every) + every // 2
            if i in (fire, fire + resolve_after):
                status = "firing" if i == fire else "resolved"
                out.append(Message(topics.alerts, 0, i, f"fp-{fire}", json.dumps({
                    "fingerprint": f"fp-{fire}", "name": "HighErrorRate", "service": SERVICES[fire % 5],
                    "status": status, "severity": "critical", "summary": f"5xx above 5% on {SERVICES[fire % 5]}",
                    "starts_at": (start + step * fire).isoformat(),
                    "ends_at": at.isoformat() if status == "resolved" else None}).encode(), {}))
            msg = (f"GET /api/orders/{i} 200 in {i % 97}ms request_id={uuid.UUID(int=i)}" if i % 4 else
                   f"upstream timeout from payments-gw.prod:443 for user{i}@example.com after 30s")
            out.append(Message(topics.logs, i % 3, i, svc, json.dumps({
                "timestamp": at.isoformat(), "service": svc, "level": "ERROR" if i % 4 == 0 else "INFO",
                "message": msg, "attributes": {"pod": f"{svc}-7d9f8b6c4-x{i % 50}"}}).encode(), {}))
        yield out


def stats(db: Database) -> dict:
    counts = {}
    with db.session() as s:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = s.scalar(select(func.count()).select_from(table))
        counts["log_events attached"] = s.scalar(text("SELECT count(*) FROM log_events WHERE incident_id IS NOT NULL"))
        if db.engine.dialect.name == "sqlite":
            page = s.scalar(text("PRAGMA page_size"))
            used = (s.scalar(text("PRAGMA page_count")) - s.scalar(text("PRAGMA freelist_count"))) * page
            files = [Path(db.engine.url.database + x) for x in ("", "-wal")]
            size = {"used pages": used, "files (with WAL)": sum(f.stat().st_size for f in files if f.exists())}
        else:
            size = {"database": s.scalar(text("SELECT pg_database_size(current_database())")),
                    "log_events (with indexes)": s.scalar(text("SELECT pg_total_relation_size('log_events')"))}
    return {"rows": counts, "size": size}


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def soak(url: str, lines: int, days: float, tmp: Path) -> None:
    migrate(url)
    db = Database(url)
    settings = load_settings(data_dir=tmp / "data", database_url=url, model="none", redaction_key="soak",
                             incident_quiet_period_s=0)
    rt = Runtime(settings=settings, db=db, bus=None, redactor=get_redactor(settings))  # ingest needs no bus
    dispatch = Dispatcher(rt)
    t0, n = time.perf_counter(), 0
    for batch in batches(lines, days, settings.topics):
        parsed = [dispatch.parse(m) for m in batch]
        with db.session() as s:
            dispatch.apply_many(s, parsed)
        with db.session() as s:  # the consumers role's quiet-period timer (every second there)
            dispatch.ingest.close_quiet_incidents(s, utcnow())
        n += len(batch)
        if n % 100_000 < BATCH:
            print(f"  {n:,} messages, {n / (time.perf_counter() - t0):,.0f}/s", flush=True)
    ingest_s = time.perf_counter() - t0
    with db.session() as s:  # what the relay does once it has produced them (this run has no broker)
        s.execute(update(Outbox).values(sent_at=utcnow() - timedelta(days=2)))
    before = stats(db)
    t1 = time.perf_counter()
    done = purge(db, settings)
    purge_s = time.perf_counter() - t1
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))  # what autovacuum does: the space is reused, not returned
    after = stats(db)
    db.dispose()
    print(f"\n{db.engine.dialect.name}: {lines:,} log lines over {days:g} days in {ingest_s:,.0f} s "
          f"({lines / ingest_s:,.0f} lines/s); retention (unattached logs {settings.retention_unattached_logs_days:g}"
          f" days, sent outbox {settings.retention_outbox_sent_days:g} days) deleted {done.logs:,} lines, "
          f"{done.placeholders:,} log placeholders and {done.outbox:,} outbox rows in {purge_s:,.1f} s")
    print("| table | rows before | rows after |\n|---|---|---|")
    for name, v in before["rows"].items():
        if v or after["rows"][name]:
            print(f"| {name} | {v:,} | {after['rows'][name]:,} |")
    for name, v in before["size"].items():
        print(f"| size: {name} | {mib(v)} | {mib(after['size'][name])} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--pg", default=os.environ.get("OPSDRAFT_TEST_POSTGRES",
                                                   "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    for kind in args.db.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "sqlite":
                soak(f"sqlite:///{Path(tmp) / 'soak.db'}", args.lines, args.days, Path(tmp))
                continue
            import psycopg

            admin = args.pg.replace("postgresql+psycopg://", "postgresql://")
            name = f"soak_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                soak(args.pg.rsplit("/", 1)[0] + f"/{name}", args.lines, args.days, Path(tmp))
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
