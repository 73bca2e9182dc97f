"""Grafana, PagerDuty, Zendesk and Freshdesk bodies, parsed and applied like the native formats."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from consumers.service import Ingest
from consumers.sources import parse_alerts, parse_ticket
from opsdraft.bus import InvalidMessage
from opsdraft.models import Alert, Incident, Outbox, Ticket, TimelineEntry


def pagerduty(event_type, at="2026-11-20T14:05:00Z"):
    return {"event": {
        "id": f"01D{event_type}", "event_type": event_type, "resource_type": "incident", "occurred_at": at,
        "agent": {"summary": "Sam Example", "type": "user_reference"}, "client": None,
        "data": {"id": "PGR0VU2", "type": "incident", "number": 2, "status": "x", "title": "Checkout 5xx spike",
                 "created_at": "2026-11-20T14:00:00Z", "urgency": "high",
                 "service": {"id": "PF9KMXH", "summary": "checkout", "type": "service_reference"},
                 "priority": {"id": "P53ZZH5", "summary": "P1"}, "html_url": "https://acme.pagerduty.com/x"}}}


GRAFANA = {
    "receiver": "opsdraft", "status": "firing", "orgId": 1, "version": "1", "groupKey": "{}:{}",
    "title": "[FIRING:1] DiskFull", "state": "alerting", "message": "…", "externalURL": "http://grafana:3000/",
    "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "service": "orders-db",
                                                "severity": "warning"},
                "annotations": {"summary": "/var 97% full"}, "startsAt": "2026-11-20T14:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://grafana:3000/alerting/x",
                "fingerprint": "gf1", "silenceURL": "…", "dashboardURL": "", "panelURL": "", "values": {"B": 97},
                "valueString": "[ var='B' value=97 ]"}],
}


def test_grafana_is_parsed_as_alertmanager():
    (ev,) = parse_alerts(GRAFANA)
    assert (ev.source, ev.name, ev.service, ev.severity, ev.summary) == (
        "grafana", "DiskFull", "orders-db", "sev3", "/var 97% full")


def test_pagerduty_events():
    (t,) = parse_alerts(pagerduty("incident.triggered"))
    assert (t.fingerprint, t.status, t.service, t.severity) == ("pagerduty:PGR0VU2", "firing", "checkout", "sev1")
    (a,) = parse_alerts(pagerduty("incident.acknowledged"))
    assert a.status == "acknowledged" and "Sam Example" in a.summary
    (r,) = parse_alerts(pagerduty("incident.resolved", "2026-11-20T14:30:00Z"))
    assert r.status == "resolved" and r.ends_at == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    assert parse_alerts(pagerduty("incident.annotated")) == []
    with pytest.raises(InvalidMessage, match="title"):
        body = pagerduty("incident.triggered")
        del body["event"]["data"]["title"]
        parse_alerts(body)


def test_acknowledged_alert_still_resolves(database, make_settings, redactor):
    ingest = Ingest(make_settings(incident_quiet_period_s=0), redactor)
    with database.session() as s:
        for kind in ("incident.triggered", "incident.acknowledged", "incident.resolved"):
            for ev in parse_alerts(pagerduty(kind, "2026-11-20T14:30:00Z")):
                ingest.apply_alert(s, ev)
        assert len(ingest.close_quiet_incidents(s, datetime(2026, 11, 20, 14, 31, tzinfo=UTC))) == 1
    with database.session() as s:
        alert = s.scalar(select(Alert))
        kinds = s.scalars(select(TimelineEntry.kind).order_by(TimelineEntry.id)).all()
        assert alert.status == "resolved"
        assert kinds[:4] == ["opened", "alert_firing", "acknowledged", "alert_resolved"]
        assert "Sam Example" not in " ".join(s.scalars(select(TimelineEntry.text)))  # redacted
        assert s.scalar(select(Incident.status)) == "closed"


def zendesk(status="open", comment=None):
    return {"ticket": {"id": 35436, "subject": "Refund please", "description": "Charged twice.", "status": status,
                       "requester": {"name": "Ana Example", "email": "ana@example.com"},
                       "created_at": "2026-11-20T15:00:00Z", "tags": ["billing"], "latest_comment": comment}}


def test_zendesk_and_freshdesk_bodies():
    t = parse_ticket(zendesk())
    assert (t.id, t.status, t.requester_text()) == ("ZD-35436", "open", "Ana Example <ana@example.com>")
    assert parse_ticket(zendesk("solved", {"body": "Refunded, thanks"})).comment == "Refunded, thanks"
    f = parse_ticket({"freshdesk_webhook": {
        "ticket_id": 7, "ticket_subject": "Cannot log in", "ticket_description": "Error 503",
        "ticket_status": "Closed", "ticket_requester_name": "Bo", "ticket_requester_email": "bo@example.org",
        "ticket_created_at": "2026-11-20 15:00:00", "ticket_tags": "login, sso"}})
    assert (f.id, f.status, f.tags) == ("FD-7", "closed", ["login", "sso"])
    with pytest.raises(InvalidMessage, match="subject"):
        parse_ticket({"ticket": {"id": 1, "created_at": "2026-11-20T15:00:00Z"}})


def test_ticket_comment_and_solve_update_the_same_ticket(database, make_settings, redactor):
    settings = make_settings()
    ingest = Ingest(settings, redactor)
    with database.session() as s:
        ingest.apply_ticket(s, parse_ticket(zendesk()))
        ingest.apply_ticket(s, parse_ticket(zendesk(comment="My number is +44 20 7946 0958")))
        ingest.apply_ticket(s, parse_ticket(zendesk("solved")))
    with database.session() as s:
        ticket = s.scalar(select(Ticket))
        topics = s.scalars(select(Outbox.topic)).all()
    assert ticket.status == "closed" and len(ticket.comments) == 1
    assert "7946" not in ticket.comments[0]["text"] and "<PHONE_1>" in ticket.comments[0]["text"]
    # A suggestion for the new ticket, and a new one for the customer's follow-up comment (issue 19: the thread is
    # context, a follow-up updates the suggestion); solving it asks for none.
    assert topics.count(settings.topics.draft_requests) == 2
    assert topics.count(settings.topics.index_updates) == 1  # solved: indexed as a resolved ticket
