"""Ingest throughput: broker -> parse -> redact -> database commit -> offset commit, per topic and database,
against raw aiokafka consumption of the same messages on the same broker (the ceiling), plus the latency from
an alert's produce to its incident being visible.

    .venv/bin/python bench/ingest/run.py [--logs 20000 --alerts 8000 --tickets 1000] [--db sqlite,postgres]
                                         [--redaction presidio]

Prints a table; the figures are this machine's, measured in this run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from sqlalchemy import select  # noqa: E402

from opsdraft.broker import EmbeddedBroker, ensure_topics  # noqa: E402
from opsdraft.bus import Bus  # noqa: E402
from opsdraft.models import Incident  # noqa: E402
from opsdraft.offsets import done_count  # noqa: E402
from opsdraft.settings import Topics, load_settings  # noqa: E402
from opsdraft_app.runner import runtime  # noqa: E402

# Live traffic: events from now on. (Events hours old make the quiet-period closer close incidents while their
# later alerts are still being read, which re-opens them: replaying an old backlog costs that churn; see README.)
T0 = datetime.now(UTC).replace(microsecond=0)
SERVICES = ["checkout", "payments", "search", "orders-db", "auth"]


def logs(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        svc = SERVICES[i % 5]
        msg = (f"GET /api/orders/{i} 200 in {i % 97}ms request_id={uuid.UUID(int=i)}" if i % 4 else
               f"upstream timeout from payments-gw.prod:443 for user{i}@example.com after 30s")
        out.append(json.dumps({"timestamp": (T0 + timedelta(milliseconds=i)).isoformat(), "service": svc,
                               "level": "ERROR" if i % 4 == 0 else "INFO", "message": msg,
                               "attributes": {"pod": f"{svc}-7d9f8b6c4-x{i % 50}"}}).encode())
    return out


def alerts(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        status = "resolved" if i % 3 == 2 else "firing"
        out.append(json.dumps({
            "fingerprint": f"fp-{i // 3}", "name": f"Alert{(i // 3) % 40}", "service": SERVICES[i % 5],
            "status": status, "severity": ["critical", "warning", "info"][i % 3],
            "summary": f"error ratio above {i % 30}% on {SERVICES[i % 5]}-{i % 7}",
            "starts_at": (T0 + timedelta(milliseconds=10 * i)).isoformat(),  # a storm: 100 alert events/s
            "ends_at": (T0 + timedelta(milliseconds=10 * i + 60_000)).isoformat() if status == "resolved" else None,
        }).encode())
    return out


def tickets(n: int) -> list[bytes]:
    return [json.dumps({
        "id": f"T-{i}", "subject": f"Order {i} failed at checkout",
        "body": f"Hi, my order {i} failed with error 503 twice. Please call me on +1 415 555 {i % 10000:04d}. "
                f"Thanks, Dana Example", "requester": {"name": "Dana Example", "email": f"dana{i}@example.com"},
        "created_at": (T0 + timedelta(seconds=i)).isoformat(), "tags": ["checkout"]}).encode() for i in range(n)]


async def raw_rate(bootstrap: str, topic: str, n: int) -> float:
    bus = await Bus(bootstrap).start()
    consumer = bus.consumer([topic], f"raw-{uuid.uuid4().hex}")
    await consumer.start()
    got, start, first = 0, None, 0
    try:
        while got < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=100)
            got += sum(len(v) for v in batch.values())
            if start is None and batch:
                start, first = time.perf_counter(), got  # the clock starts once the group has joined
    finally:
        await consumer.stop()
        await bus.stop()
    return (n - first) / (time.perf_counter() - start)


def partition_key(kind: str, payload: bytes) -> bytes | None:
    if kind == "alerts":
        return json.loads(payload)["fingerprint"].encode()
    if kind == "tickets":
        return json.loads(payload)["id"].encode()
    return None


async def pipeline_rate(settings, bootstrap: str, topic_attr: str, payloads: list[bytes]) -> float:
    """The payloads are produced first (a backlog, as the raw aiokafka ceiling reads it: the senders are other
    programs, and their CPU is not opsdraft's); then the consumers start, and are timed from the first batch
    applied (the group joined, the first batch's caches filled, as in a running service) to the last message."""
    from consumers.worker import run as run_consumers

    async with runtime(settings, bootstrap) as rt:
        topic = getattr(settings.topics, topic_attr)
        for p in payloads:
            # Keyed as the webhook receivers key them (consumers/sources): an alert's events by its fingerprint,
            # a ticket's by its id, so each one's events stay in order on one partition; log lines unkeyed.
            await rt.bus.producer.send(topic, p, key=partition_key(topic_attr, p))
        await rt.bus.producer.flush()

        def consumed() -> int:
            with rt.db.session() as s:
                return done_count(s, topic)

        stop = asyncio.Event()
        task = asyncio.create_task(run_consumers(rt, stop))
        start, first, total = None, 0, len(payloads)
        while (n := await asyncio.to_thread(consumed)) < total:
            if start is None and n > 0:
                start, first = time.perf_counter(), n
            await asyncio.sleep(0.1)  # each look is a query in the measured process: not too often
        elapsed = time.perf_counter() - start if start is not None else float("nan")
        stop.set()
        await task
        return (total - first) / elapsed


async def alert_latency(settings, bootstrap: str, samples: int = 20) -> list[float]:
    from consumers.worker import run as run_consumers

    async with runtime(settings, bootstrap) as rt:
        stop = asyncio.Event()
        task = asyncio.create_task(run_consumers(rt, stop))
        await asyncio.sleep(4)  # the consumer group settles
        out, uid = [], uuid.uuid4().hex[:8]
        for i in range(samples):
            svc = f"svc{i}-{uid}"
            body = {"fingerprint": f"lat-{i}-{uid}", "name": f"Latency{i}", "service": svc, "status": "firing",
                    "starts_at": datetime.now(UTC).isoformat()}
            sent = time.perf_counter()
            await rt.bus.send(settings.topics.alerts, body)
            while True:
                with rt.db.session() as s:
                    if s.scalar(select(Incident.id).where(Incident.service == svc)):
                        break
                await asyncio.sleep(0.005)
            out.append(time.perf_counter() - sent)
        stop.set()
        await task
        return out


CREATED_DATABASES: list[str] = []


def fresh_postgres(server_url: str, name: str) -> str:
    """A new database on the server for one measurement: rows left by earlier runs (open incidents, placeholders)
    would make each run slower than the last and the figures incomparable. Dropped at the end (drop_created)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    CREATED_DATABASES.append(name)
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_created(server_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in CREATED_DATABASES:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


POSTGRES = os.environ.get("OPSDRAFT_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def settings_for(db: str, tmp: Path, bootstrap: str, redaction: str):
    uid = uuid.uuid4().hex[:8]
    url = "" if db == "sqlite" else fresh_postgres(POSTGRES, f"opsdraft_bench_{uid}")
    return load_settings(data_dir=tmp / uid, database_url=url, kafka_bootstrap_servers=bootstrap,
                         topics=Topics(**{k: f"{v}-{uid}" for k, v in Topics().model_dump().items()}),
                         consumer_group=f"bench-{uid}", redaction_mode=redaction, redaction_key="bench")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", type=int, default=20000)
    ap.add_argument("--alerts", type=int, default=8000)
    ap.add_argument("--tickets", type=int, default=1000)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--redaction", default="presidio", choices=["presidio", "patterns"])
    args = ap.parse_args()
    try:
        await measure(args)
    finally:
        if CREATED_DATABASES:
            drop_created(POSTGRES)


async def measure(args: argparse.Namespace) -> None:
    kinds = {"logs": logs, "alerts": alerts, "tickets": tickets}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        rows = []
        for db in args.db.split(","):
            for kind, make in kinds.items():
                n = getattr(args, kind)
                settings = settings_for(db, Path(tmp), broker.bootstrap, args.redaction)
                await ensure_topics(broker.bootstrap, settings.topics.all())
                rate = await pipeline_rate(settings, broker.bootstrap, kind, make(n))
                ceiling = await raw_rate(broker.bootstrap, getattr(settings.topics, kind), n)
                rows.append((db, kind, n, rate, ceiling))
                print(f"{db:9} {kind:8} n={n:<6} opsdraft {rate:8.0f}/s   raw aiokafka {ceiling:8.0f}/s   "
                      f"ratio {rate / ceiling:.3f}", flush=True)
            lat = await alert_latency(settings_for(db, Path(tmp), broker.bootstrap, args.redaction), broker.bootstrap)
            q = statistics.quantiles(lat, n=20)
            print(f"{db:9} alert -> incident visible: p50 {statistics.median(lat) * 1000:.0f} ms, "
                  f"p95 {q[18] * 1000:.0f} ms", flush=True)
    print(f"redaction={args.redaction}; cpu cores={os.cpu_count()}")


if __name__ == "__main__":
    asyncio.run(main())
