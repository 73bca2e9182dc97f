"""Identifiers that can carry personal data (alert names, services, label keys and values, fingerprints, log
attribute keys, ticket ids) are stored redacted, and since they are grouping keys, redacted the same way in
every scope: dedup, grouping and log-to-incident matching still work. Real redaction, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from consumers.identifiers import Identifiers
from consumers.payloads import AlertEvent, parse_log, parse_ticket
from consumers.service import Ingest
from opsdraft.models import Alert, Base, Incident, LogEvent, Ticket

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
EMAIL, NAME, PHONE, CARD = "rosalind.pembury@example.com", "Rosalind Pembury", "+44 20 7946 0321", "4111111111111111"


def alert(fp, name, service, labels, status="firing", at=T0):
    return AlertEvent(fingerprint=fp, name=name, service=service, severity="sev2", status=status, summary="5xx",
                      labels={"alertname": name, "service": service, **labels}, starts_at=at,
                      ends_at=at if status == "resolved" else None, source="test")


def test_ordinary_identifiers_stay_and_personal_ones_get_stable_placeholders(redactor):
    a, b = Identifiers(redactor, b"k"), Identifiers(redactor, b"k")
    for plain in ("checkout", "payments-api", "HighErrorRate", "KubePodCrashLooping", "db-01.prod", "T-77",
                  "12345", "alertname", "severity", "a1b2c3d4e5f60718"):
        assert a.text(plain, "alerts") == plain
    first = a.text(f"owner {EMAIL}", "alerts")
    assert EMAIL not in first and first == b.text(f"owner {EMAIL}", "alerts")  # any process, any scope
    assert a.text("owner other.person@example.com", "alerts") != first  # distinct values stay distinct
    assert Identifiers(redactor, b"other key").text(f"owner {EMAIL}", "alerts") != first
    assert a.text(first, "alerts") == first  # redacting twice changes nothing
    joined = a.text(f"canary-fp/{EMAIL}|{PHONE}", "alerts")  # e.g. a fingerprint made of label values
    assert joined.startswith("canary-fp/<EMAIL_") and EMAIL not in joined and "7946" not in joined
    labels = a.mapping({EMAIL: NAME, "pager": PHONE, "nested": {CARD: "x"}}, "alerts", values=True)
    assert not any(v in json.dumps(labels) for v in (EMAIL, NAME, PHONE, CARD)), labels
    assert set(labels) == {a.text(EMAIL, "alerts"), "pager", "nested"}
    allowed = Identifiers(type(redactor)(redactor.mode, allow_list=[NAME]), b"k")
    assert allowed.text(NAME, "alerts") == NAME  # OPSDRAFT_REDACTION_ALLOW is honoured


def test_alert_log_and_ticket_identifiers_are_stored_redacted(database, make_settings, redactor):
    ingest = Ingest(make_settings(), redactor)
    fp, name, service = f"{EMAIL}/{PHONE}", f"Paged {NAME}", EMAIL
    with database.session() as s:
        ingest.prefetch_alerts(s, [alert(fp, name, service, {EMAIL: CARD})])
        ingest.apply_alert(s, alert(fp, name, service, {EMAIL: CARD}))
        ingest.apply_alert(s, alert(fp, name, service, {EMAIL: CARD}))  # the repeat is still a duplicate
        ingest.apply_alert(s, alert(f"{EMAIL}/other", name, service, {}, at=T0 + timedelta(minutes=1)))
        ingest.apply_logs(s, [parse_log({"timestamp": (T0 + timedelta(minutes=2)).isoformat(), "service": service,
                                         "level": "ERROR", "message": "boom", "attributes": {EMAIL: "x"}})])
        ingest.apply_ticket(s, parse_ticket({"id": EMAIL, "subject": "Late order", "body": "where is it",
                                             "requester": "someone", "created_at": T0.isoformat()}))
        ingest.apply_ticket(s, parse_ticket({"id": EMAIL, "subject": "Late order!", "body": "where is it",
                                             "requester": "someone", "created_at": T0.isoformat()}))
    with database.session() as s:
        incidents, alerts = s.scalars(select(Incident)).all(), s.scalars(select(Alert)).all()
        assert len(incidents) == 1 and len(alerts) == 2  # grouped by the (redacted) name and service, deduped
        log = s.scalar(select(LogEvent))
        assert log.incident_id == incidents[0].id  # found its incident by the redacted service
        tickets = s.scalars(select(Ticket)).all()
        assert len(tickets) == 1 and tickets[0].subject == "Late order!"  # the update found the same ticket
        with database.engine.connect() as conn:
            dump = json.dumps([[list(r) for r in conn.execute(t.select())] for t in Base.metadata.sorted_tables],
                              default=str)
    leaked = [v for v in (EMAIL, NAME, PHONE, CARD, "Rosalind", "Pembury") if v in dump]
    assert not leaked, leaked
    assert "<EMAIL_" in dump and "<PERSON_" in dump
