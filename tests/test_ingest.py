"""Grouping, dedup, resolving and closing, on SQLite and PostgreSQL, with real redaction."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from consumers.payloads import AlertEvent, parse_log, parse_ticket
from consumers.service import Ingest, settle
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
        settle(s)  # what the commit would do: read the state within the transaction
        assert inc.all_resolved_at is None  # b still firing
        ingest.apply_alert(s, ev("b", "resolved", ends=T0 + timedelta(minutes=7)))
        ingest.apply_alert(s, ev("b", "resolved", ends=T0 + timedelta(minutes=7)))  # repeated resolve
        settle(s)
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


def test_stored_placeholders_are_looked_up_not_loaded(database, make_settings, redactor):
    """A scope's placeholders persist across transactions and are asked for value by value: the same value
    keeps its placeholder, a new one gets the next number, and a type sharing a prefix does not confuse it."""
    from opsdraft.privacy import ScopedRedactor

    settings = make_settings(redaction_deny=["PHONE_EXT=x\\d{4}\\b"])
    red = lambda s: ScopedRedactor(s, redactor, settings.redaction_key_bytes(), "log:checkout")  # noqa: E731
    with database.session() as s:
        assert red(s).texts(["a@example.com b@example.com", "ext x1234"], source="logs") == \
            ["<EMAIL_1> <EMAIL_2>", "ext x1234"]
        s.add(Placeholder(scope="log:checkout", digest="d" * 64, placeholder="<EMAIL_EXTRA_9>"))
    with database.session() as s:
        r = red(s)
        assert r.text("b@example.com then c@example.com", source="logs") == "<EMAIL_2> then <EMAIL_3>"
        assert r.texts(["c@example.com", "a@example.com"], source="logs") == ["<EMAIL_3>", "<EMAIL_1>"]
    with database.session() as s:  # two redactors of one scope in one transaction (the bot makes one per call)
        first, second = red(s), red(s)
        assert first.text("d@example.com", source="logs") == "<EMAIL_4>"
        assert second.text("d@example.com e@example.com", source="logs") == "<EMAIL_4> <EMAIL_5>"
    with database.session() as s:  # another scope numbers on its own
        other = ScopedRedactor(s, redactor, settings.redaction_key_bytes(), "log:search")
        assert other.text("c@example.com", source="logs") == "<EMAIL_1>"
        assert count(s, Placeholder.id, Placeholder.scope == "log:checkout") == 6


def test_several_scopes_redacted_at_once_match_each_scope_alone(database, make_settings, redactor):
    """texts_in_scopes (an ingest batch: a scope per service and incident, one look-up and one write for all)
    gives what each scope's own texts() gives, with placeholders stored before and made now."""
    from opsdraft.privacy import ScopedRedactor, texts_in_scopes

    key = make_settings().redaction_key_bytes()
    batches = [["a@example.com and b@example.com", "no pii here"], ["b@example.com", "c@example.com a@example.com"],
               ["d@example.com"]]

    def run(together: bool) -> tuple[list[list[str]], dict]:
        scopes = [f"log:{s}-{together}" for s in ("checkout", "search", "auth")]
        with database.session() as s:  # stored earlier: checkout knows b, search knows c
            ScopedRedactor(s, redactor, key, scopes[0]).text("b@example.com", source="logs")
            ScopedRedactor(s, redactor, key, scopes[1]).text("x@example.com c@example.com", source="logs")
        with database.session() as s:
            reds = [ScopedRedactor(s, redactor, key, scope) for scope in scopes]
            if together:
                out = texts_in_scopes(list(zip(reds, batches, strict=True)), source="logs")
            else:
                out = [red.texts(texts, source="logs") for red, texts in zip(reds, batches, strict=True)]
        with database.session() as s:
            stored = {(scope.split("-")[0], p) for scope, p in s.execute(
                select(Placeholder.scope, Placeholder.placeholder).where(Placeholder.scope.in_(scopes)))}
        return out, stored

    together, alone = run(True), run(False)
    assert together == alone
    assert together[0] == [["<EMAIL_2> and <EMAIL_1>", "no pii here"], ["<EMAIL_3>", "<EMAIL_2> <EMAIL_4>"],
                           ["<EMAIL_1>"]]


def test_a_batch_applies_like_one_message_at_a_time(make_settings, redactor, tmp_path):
    """Dispatcher.apply_many (prefetched alerts, bulk logs, one timeline write) ends in the same rows as
    applying each message in its own transaction."""
    from consumers.worker import Dispatcher
    from opsdraft.db import Database, migrate
    from opsdraft.runtime import Runtime

    def mixed():
        out = []
        for i in range(60):
            at = T0 + timedelta(seconds=20 * i)
            svc = ["checkout", "search"][i % 2]
            if i % 3 == 0:
                out.append(("log", parse_log({"timestamp": at.isoformat(), "service": svc, "level": "ERROR",
                                              "message": f"timeout for u{i % 7}@example.com"})))
            status = "resolved" if i % 5 == 4 else "firing"
            out.append(("alerts", [ev(f"fp{i % 9}", status, name=f"A{i % 4}", service=svc, at=at,
                                      ends=at if status == "resolved" else None,
                                      summary=f"ratio {i}% from 203.0.113.{i % 5}")]))
        return out

    def snapshot(db):
        with db.session() as s:
            return {
                "incidents": s.execute(select(Incident.id, Incident.group_key, Incident.status, Incident.severity,
                                              Incident.all_resolved_at).order_by(Incident.id)).all(),
                "alerts": s.execute(select(Alert.fingerprint, Alert.incident_id, Alert.status, Alert.text)
                                    .order_by(Alert.fingerprint)).all(),
                "logs": sorted(s.execute(select(LogEvent.at, LogEvent.message, LogEvent.incident_id)).all()),
                "timeline": sorted(s.execute(select(TimelineEntry.incident_id, TimelineEntry.kind,
                                                    TimelineEntry.text, TimelineEntry.source_ref)).all()),
            }

    results = []
    for mode in ("one", "batch"):
        url = f"sqlite:///{tmp_path}/{mode}.db"
        migrate(url)
        db = Database(url)
        dispatch = Dispatcher(Runtime(settings=make_settings(), db=db, bus=None, redactor=redactor))
        items = mixed()
        if mode == "one":
            for item in items:
                with db.session() as s:
                    dispatch.apply_many(s, [item])
        else:
            for i in range(0, len(items), 25):
                with db.session() as s:
                    dispatch.apply_many(s, items[i:i + 25])
        results.append(snapshot(db))
        db.dispose()
    assert results[0]["timeline"] and results[0]["alerts"]
    assert results[0] == results[1]
