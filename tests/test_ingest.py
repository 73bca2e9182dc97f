"""Grouping, dedup, resolving and closing, on SQLite and PostgreSQL, with real redaction."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from consumers.payloads import AlertEvent, parse_log, parse_ticket
from consumers.service import Ingest
from opsdraft.models import Alert, Incident, LogEvent, Outbox, Placeholder, Ticket, TimelineEntry

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def ev(fp, status="firing", name="HighErrorRate", service="checkout", sev="sev2", at=T0, ends=None, summary="5xx"):
    return AlertEvent(fingerprint=fp, name=name, service=service, severity=sev, status=status, summary=summary,
                      labels={"alertname": name, "service": service}, starts_at=at, ends_at=ends, source="test")


def count(s, col, *where):
    return s.scalar(select(func.count(col)).where(*where))


def test_group_dedup_resolve_close(database, make_settings, redactor):
    ingest = Ingest(make_settings(), redactor)
    with database.session() as s:
        ingest.apply_alert(s, ev("a"))
        ingest.apply_alert(s, ev("a"))  # Alertmanager repeats: a duplicate
        ingest.apply_alert(s, ev("b", sev="sev1", at=T0 + timedelta(minutes=1)))
        ingest.apply_alert(s, ev("c", name="DiskFull"))  # another group: another incident
    with database.session() as s:
        assert count(s, Incident.id) == 2 and count(s, Alert.id) == 3
        inc = s.scalar(select(Incident).where(Incident.group_key == "checkout/HighErrorRate"))
        assert inc.severity == "sev1" and inc.status == "open"
        assert count(s, TimelineEntry.id, TimelineEntry.incident_id == inc.id) == 3  # opened + 2 firing
        ingest.apply_alert(s, ev("a", "resolved", ends=T0 + timedelta(minutes=5)))
        assert inc.all_resolved_at is None  # b still firing
        ingest.apply_alert(s, ev("b", "resolved", ends=T0 + timedelta(minutes=7)))
        ingest.apply_alert(s, ev("b", "resolved", ends=T0 + timedelta(minutes=7)))  # repeated resolve
        assert inc.all_resolved_at == T0 + timedelta(minutes=7)
        assert ingest.close_quiet_incidents(s, T0 + timedelta(minutes=7, seconds=0.1)) == []  # quiet period
        assert ingest.close_quiet_incidents(s, T0 + timedelta(minutes=8)) == [inc.id]
        assert inc.status == "closed"
        topics = [r.topic for r in s.scalars(select(Outbox))]
        settings = ingest.settings
        assert topics.count(settings.topics.draft_requests) == 1  # the postmortem request
        assert topics.count(settings.topics.incident_events) == 3  # 2 opened + 1 closed
        assert topics.count(settings.topics.index_updates) == 1
        assert not ingest.close_incident(s, inc, T0, "", "U1")  # already closed
        # A re-fire soon after close (a flapping alert) reopens the incident...
        ingest.apply_alert(s, ev("a", at=T0 + timedelta(minutes=20)))
        assert count(s, Incident.id, Incident.group_key == "checkout/HighErrorRate") == 1
        assert inc.status == "open" and inc.closed_at is None
        ingest.apply_alert(s, ev("a", "resolved", ends=T0 + timedelta(minutes=21)))
        assert ingest.close_quiet_incidents(s, T0 + timedelta(minutes=30)) == [inc.id]
        # ...a re-fire long after close opens a new one.
        ingest.apply_alert(s, ev("a", at=T0 + timedelta(hours=2)))
        assert count(s, Incident.id, Incident.group_key == "checkout/HighErrorRate") == 2
        requests = s.scalars(select(Outbox.payload).where(Outbox.topic == settings.topics.draft_requests)).all()
        assert len({r["request_id"] for r in requests}) == 2  # each close asks for its own postmortem


def test_text_is_redacted_with_consistent_placeholders(database, make_settings, redactor):
    ingest = Ingest(make_settings(), redactor)
    with database.session() as s:
        ingest.apply_alert(s, ev("a", summary="login failures for jane.roe@example.com from 203.0.113.7"))
        ingest.apply_log(s, parse_log({
            "timestamp": "2026-11-20T14:01:00Z", "service": "checkout", "level": "ERROR",
            "message": "user jane.roe@example.com token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 on db-01.prod",
            "attributes": {"client_ip": "203.0.113.7", "request_id": "5f1c2a9e-8b7d-4c3e-9a10-2b6f0d4e7a11"}}))
        ingest.apply_ticket(s, parse_ticket({
            "id": "T-9", "subject": "Refund", "body": "Call me at +1 415 555 0134",
            "created_at": "2026-11-20T14:00:00Z",
            "requester": {"name": "Jane Roe", "email": "jane.roe@example.com"}}))
    with database.session() as s:
        alert = s.scalar(select(Alert))
        log = s.scalar(select(LogEvent))
        ticket = s.scalar(select(Ticket))
        assert "jane.roe@example.com" not in alert.text + log.message + ticket.requester
        assert "ghp_" not in log.message and "555 0134" not in ticket.body
        assert "db-01.prod" in log.message  # technical text survives
        assert log.attributes["request_id"] == "5f1c2a9e-8b7d-4c3e-9a10-2b6f0d4e7a11"
        # the same email gets the same placeholder across the incident's alert and log
        email_ph = [w for w in alert.text.split() if w.startswith("<EMAIL")][0]
        assert email_ph in log.message
        assert log.attributes["client_ip"] in alert.text
        assert log.incident_id == alert.incident_id
        assert count(s, TimelineEntry.id, TimelineEntry.kind == "log") == 1
        stored = " ".join(p.digest + p.placeholder for p in s.scalars(select(Placeholder)))
        assert "jane" not in stored.lower()


def test_ticket_resend_updates_and_requests_one_reply(database, make_settings, redactor):
    settings = make_settings()
    ingest = Ingest(settings, redactor)
    base = {"id": "T-1", "subject": "Slow", "body": "It is slow", "requester": "someone",
            "created_at": "2026-11-20T14:00:00Z"}
    with database.session() as s:
        ingest.apply_ticket(s, parse_ticket(base))
        ingest.apply_ticket(s, parse_ticket(base | {"body": "It is very slow"}))
    with database.session() as s:
        assert count(s, Ticket.id) == 1 and s.scalar(select(Ticket.body)) == "It is very slow"
        assert count(s, Outbox.id, Outbox.topic == settings.topics.draft_requests) == 1


def test_group_by_setting(database, make_settings, redactor):
    ingest = Ingest(make_settings(incident_group_by="service"), redactor)  # one incident per service
    with database.session() as s:
        ingest.apply_alert(s, ev("a", name="HighErrorRate"))
        ingest.apply_alert(s, ev("b", name="HighLatency"))
        ingest.apply_alert(s, ev("c", name="HighLatency", service="search"))
        assert sorted(s.scalars(select(Incident.group_key))) == ["checkout", "search"]


def test_logs_that_arrive_before_the_alert_join_its_incident(database, make_settings, redactor):
    ingest = Ingest(make_settings(), redactor)
    with database.session() as s:
        for minute, level in [(-30, "ERROR"), (-5, "INFO"), (-2, "ERROR")]:
            ingest.apply_log(s, parse_log({"timestamp": (T0 + timedelta(minutes=minute)).isoformat(),
                                           "service": "checkout", "level": level, "message": f"m{minute}"}))
        ingest.apply_alert(s, ev("a"))
    with database.session() as s:
        inc = s.scalar(select(Incident))
        attached = s.scalars(select(LogEvent.message).where(LogEvent.incident_id == inc.id)).all()
        assert sorted(attached) == ["m-2", "m-5"]  # not the one from 30 minutes before
        kinds = s.scalars(select(TimelineEntry.kind).where(TimelineEntry.incident_id == inc.id)).all()
        assert sorted(kinds) == ["alert_firing", "log", "opened"]  # only the error lands on the timeline


def test_names_are_restored_only_when_a_reply_is_published(database, make_settings, redactor):
    from opsdraft.models import Placeholder
    from opsdraft.privacy import publish_transform

    settings = make_settings()
    with database.session() as s:
        Ingest(settings, redactor).apply_ticket(s, parse_ticket({
            "id": "T-77", "subject": "Refund", "body": "Charged twice. Thanks, Jane Roe",
            "requester": {"name": "Jane Roe", "email": "jane.roe@example.com"}, "created_at": "2026-11-20T14:00:00Z"}))
    with database.session() as s:
        ticket = s.scalar(select(Ticket))
        stored = " ".join(f"{p.placeholder} {p.digest} {p.sealed}" for p in s.scalars(select(Placeholder)))
    assert "Jane" not in ticket.body + ticket.requester + stored  # sealed: encrypted, not in the clear
    name = next(w for w in ticket.requester.split() if w.startswith("<PERSON"))
    email = next(w.strip("<>") for w in ticket.requester.split() if "EMAIL" in w)
    reply = {"ticket_id": "T-77", "body": f"Hello {name}, we refunded you. Contact: <{email}>", "scope": "ticket:T-77"}
    published = publish_transform(settings, database)(settings.topics.ticket_replies, reply)
    assert published["body"].startswith("Hello Jane Roe,")  # the name comes back...
    assert "jane.roe@example.com" not in published["body"]  # ...and only the name
    assert reply["body"].startswith(f"Hello {name}")  # the outbox payload itself is untouched
    assert publish_transform(settings, database)(settings.topics.alerts, reply) == reply  # only ticket-replies
    off = make_settings(redaction_restore_names=False)
    assert publish_transform(off, database)(off.topics.ticket_replies, reply) == reply
