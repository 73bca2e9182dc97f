"""Retention deletes exactly what its settings say, on SQLite and PostgreSQL, and never a log line an incident
holds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from consumers.payloads import AlertEvent, parse_log
from consumers.retention import purge, run_retention
from consumers.service import Ingest
from opsdraft.models import Incident, LogEvent, Outbox, Placeholder

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=10)  # past the 7-day default
RECENT = NOW - timedelta(days=2)


def lines(service: str, at: datetime, n: int, level: str = "ERROR") -> list:
    return [parse_log({"timestamp": (at + timedelta(seconds=i)).isoformat(), "service": service, "level": level,
                       "message": f"upstream timeout {i} for user{i}@example.com"}) for i in range(n)]


def seed(db, settings, redactor) -> dict[str, int]:
    """Through the real ingest path: old lines of checkout that its incident attaches, old and recent lines of
    payments that no incident holds; outbox rows produced long ago, lately, and never."""
    ingest = Ingest(settings, redactor)
    with db.session() as s:
        ingest.apply_logs(s, lines("checkout", OLD, 120))
        ingest.apply_logs(s, lines("payments", OLD, 250, level="INFO"))
        ingest.apply_logs(s, lines("payments", RECENT, 30, level="INFO"))
    with db.session() as s:  # the alert opens checkout's incident, which attaches the lines before it
        ingest.apply_alert(s, AlertEvent(
            fingerprint="fp-1", name="HighErrorRate", service="checkout", severity="sev2", status="firing",
            summary="5xx", labels={"alertname": "HighErrorRate", "service": "checkout"},
            starts_at=OLD + timedelta(minutes=5), ends_at=None, source="test"))
    with db.session() as s:
        s.execute(Outbox.__table__.delete())  # what the ingest queued: not this test's subject
        s.add_all([Outbox(topic="t", key="old-sent", payload={}, created_at=OLD, sent_at=NOW - timedelta(days=3)),
                   Outbox(topic="t", key="new-sent", payload={}, created_at=NOW, sent_at=NOW - timedelta(hours=2)),
                   Outbox(topic="t", key="old-unsent", payload={}, created_at=OLD, sent_at=None)])
    return counts(db)


def counts(db) -> dict[str, int]:
    with db.session() as s:
        def n(*where):
            return s.scalar(select(func.count(LogEvent.id)).where(*where))
        return {"attached": n(LogEvent.incident_id.is_not(None)),
                "payments_old": n(LogEvent.service == "payments", LogEvent.at < NOW - timedelta(days=7)),
                "payments_recent": n(LogEvent.service == "payments", LogEvent.at >= NOW - timedelta(days=7)),
                "outbox": sorted(s.scalars(select(Outbox.key)))}


def test_retention_deletes_what_the_settings_say_and_never_incident_logs(database, make_settings, redactor):
    settings = make_settings(retention_batch_rows=100)  # 250 old lines: three chunks
    before = seed(database, settings, redactor)
    with database.session() as s:
        assert s.scalar(select(func.count(Incident.id))) == 1
    assert before == {"attached": 120, "payments_old": 250, "payments_recent": 30,
                      "outbox": ["new-sent", "old-sent", "old-unsent"]}
    done = purge(database, settings, now=NOW)
    assert (done.logs, done.outbox) == (250, 1)
    assert counts(database) == {"attached": 120, "payments_old": 0, "payments_recent": 30,
                                "outbox": ["new-sent", "old-unsent"]}
    assert purge(database, settings, now=NOW).total == 0  # nothing left to expire

    # Ten days later the recent lines and the other produced row have expired too; attached lines never do.
    done = purge(database, settings, now=NOW + timedelta(days=10))
    assert (done.logs, done.outbox) == (30, 1)
    assert counts(database) == {"attached": 120, "payments_old": 0, "payments_recent": 0, "outbox": ["old-unsent"]}


def test_zero_keeps_forever_and_windows_are_the_settings(database, make_settings, redactor):
    seed(database, make_settings(), redactor)
    keep = make_settings(retention_unattached_logs_days=0, retention_outbox_sent_days=0)
    assert purge(database, keep, now=NOW + timedelta(days=1000)).total == 0
    # 12 days back: the old payments lines (10 days) stay; the row produced 3 days ago goes at a 2-day window.
    window = make_settings(retention_unattached_logs_days=12, retention_outbox_sent_days=2)
    done = purge(database, window, now=NOW)
    assert (done.logs, done.outbox, done.passes) == (0, 1, ["logs", "placeholders", "outbox"])
    done = purge(database, window, now=NOW + timedelta(days=2, hours=1))
    assert done.logs == 250


def test_the_periodic_job_purges_at_start_and_stops(database, make_settings, redactor):
    settings = make_settings(retention_interval_s=3600)
    seed(database, settings, redactor)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(run_retention(database, settings, stop))
        for _ in range(200):  # the first pass runs at once, against the real clock: the old lines go
            if counts(database)["payments_old"] == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    after = counts(database)
    assert after["payments_old"] == 0 and after["attached"] == 120 and "old-sent" not in after["outbox"]


def placeholders(db) -> dict[str, int]:
    with db.session() as s:
        return dict(s.execute(select(Placeholder.scope, func.count()).group_by(Placeholder.scope)).all())


def test_log_placeholders_go_when_no_line_in_the_window_used_them(database, make_settings, redactor):
    """A log scope gains a placeholder per distinct address a service logs; retention deletes those no line within
    the window used (by the lines' own time), keeps those a recent line used again, and never reuses a number."""
    settings = make_settings(retention_batch_rows=100)
    seed(database, settings, redactor)  # payments: user0..249 ten days ago, user0..29 again two days ago
    with database.session() as s:
        s.add(Placeholder(scope="incident:1", digest="d" * 64, placeholder="<EMAIL_1>", last_seen_at=OLD))
    before = placeholders(database)
    assert before["log:payments"] == 250 and before["log:checkout"] == 120 and before["incident:1"] == 1
    done = purge(database, settings, now=NOW)
    # 220 of payments' (used only by the expired lines) and all 120 of checkout's (its lines are attached to the
    # incident, and kept, but no line used these within the window); the incident scope's is never purged.
    assert done.placeholders == 220 + 120
    assert placeholders(database) == {"log:payments": 30, "incident:1": 1}

    ingest = Ingest(settings, redactor)
    with database.session() as s:
        ingest.apply_logs(s, [parse_log({"timestamp": NOW.isoformat(), "service": "payments", "level": "INFO",
                                         "message": f"retry for user{i}@example.com"}) for i in (5, 100)])
    with database.session() as s:
        latest = s.scalars(select(LogEvent.message).where(LogEvent.at == NOW)).all()
    # user5 kept its placeholder; user100's was deleted, so it gets the next number, never a used one.
    assert sorted(latest) == ["retry for <EMAIL_251>", "retry for <EMAIL_6>"]
    # Used again just now: neither goes at the next pass, while the other 29, used last two days ago, go 8 days later.
    assert purge(database, settings, now=NOW).placeholders == 0
    assert purge(database, settings, now=NOW + timedelta(days=6)).placeholders == 29
    assert placeholders(database) == {"log:payments": 2, "incident:1": 1}
