"""Incident times as an on-call engineer counts them, and stale alerts, on SQLite and PostgreSQL: closed at the
last alert's resolve (the quiet period only delays the close), durations are the firing windows (a reopen is a
window of its own), replays keep their own times, a reopen supersedes the pending postmortem, a PagerDuty
acknowledgement is stamped when it happened, and an alert Alertmanager stopped sending goes stale and lets its
incident close, saying so."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from consumers.service import Ingest, settle
from consumers.sources import parse_alerts
from opsdraft.incident_times import windows_of
from opsdraft.models import Alert, Draft, DraftStatus, Incident, TimelineEntry, utcnow
from summarizer.facts import IncidentFacts, duration
from tests.test_ingest import ev
from tests.test_vendors import pagerduty

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def facts_of(inc: Incident) -> IncidentFacts:
    return IncidentFacts(id=inc.id, title=inc.title, service=inc.service, severity=inc.severity, status=inc.status,
                         opened_at=inc.opened_at, closed_at=inc.closed_at, events=[], windows=windows_of(inc))


def entries(s, inc: Incident, kind: str) -> list[TimelineEntry]:
    settle(s)  # timeline entries are written as the transaction commits
    return list(s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == inc.id,
                                                      TimelineEntry.kind == kind)))


def test_closed_at_the_last_resolve_with_the_firing_windows(database, make_settings, redactor):
    ingest = Ingest(make_settings(incident_quiet_period_s=20), redactor)
    with database.session() as s:
        ingest.apply_alert(s, ev("a"))
        ingest.apply_alert(s, ev("b", at=T0 + timedelta(seconds=10)))
        ingest.apply_alert(s, ev("a", "resolved", ends=T0 + timedelta(seconds=40)))
        ingest.apply_alert(s, ev("b", "resolved", ends=T0 + timedelta(seconds=70)))
    with database.session() as s:
        inc = s.scalar(select(Incident))
        assert ingest.close_quiet_incidents(s, T0 + timedelta(seconds=80)) == []  # within the quiet period
        # Processed days later (a replay of an old outage): still its own times, not "103 h".
        assert ingest.close_quiet_incidents(s, T0 + timedelta(hours=103)) == [inc.id]
        assert inc.closed_at == T0 + timedelta(seconds=70)  # the last resolve, not now + the quiet period
        assert [e.at for e in entries(s, inc, "closed")] == [T0 + timedelta(seconds=70)]
        assert duration(facts_of(inc)) == "1m 10s"
        draft = Draft(request_id=f"pm-{inc.id}", kind="postmortem", subject_type="incident", subject_id=inc.id,
                      title="t", body="b", model="none")
        s.add(draft)
    with database.session() as s:
        inc = s.scalar(select(Incident))
        # A re-fire 5 minutes later reopens it: a second window, the gap not counted, the postmortem superseded.
        ingest.apply_alert(s, ev("a", at=T0 + timedelta(minutes=6)))
        assert inc.status == "open"
        assert s.scalar(select(Draft.status).where(Draft.subject_id == inc.id)) == DraftStatus.superseded
        assert duration(facts_of(inc)) == "ongoing (incident not closed)"
        ingest.apply_alert(s, ev("a", "resolved", ends=T0 + timedelta(minutes=8)))
        assert ingest.close_quiet_incidents(s, T0 + timedelta(minutes=9)) == [inc.id]
        assert inc.closed_at == T0 + timedelta(minutes=8)
        assert windows_of(inc) == [(T0, T0 + timedelta(seconds=70)), (T0 + timedelta(minutes=6),
                                                                       T0 + timedelta(minutes=8))]
        text = duration(facts_of(inc))
        assert text.startswith("3m 10s in 2 firing windows") and "14:06" in text, text


def test_a_refire_within_the_quiet_period_is_a_window_of_its_own(database, make_settings, redactor):
    ingest = Ingest(make_settings(incident_quiet_period_s=600), redactor)
    with database.session() as s:
        ingest.apply_alert(s, ev("a"))
        ingest.apply_alert(s, ev("a", "resolved", ends=T0 + timedelta(minutes=1)))
    with database.session() as s:
        ingest.apply_alert(s, ev("a", at=T0 + timedelta(minutes=3)))  # all had resolved; quiet period not over
        ingest.apply_alert(s, ev("a", "resolved", ends=T0 + timedelta(minutes=4)))
    with database.session() as s:
        inc = s.scalar(select(Incident))
        assert ingest.close_quiet_incidents(s, T0 + timedelta(minutes=20)) == [inc.id]
        assert inc.closed_at == T0 + timedelta(minutes=4)
        assert duration(facts_of(inc)).startswith("2m in 2 firing windows")


def test_a_pagerduty_acknowledgement_is_stamped_when_it_happened(database, make_settings, redactor):
    ingest = Ingest(make_settings(), redactor)
    with database.session() as s:
        for e in parse_alerts(pagerduty("incident.triggered")):
            ingest.apply_alert(s, e)
        for e in parse_alerts(pagerduty("incident.acknowledged", at="2026-11-20T14:03:00Z")):
            ingest.apply_alert(s, e)
    with database.session() as s:
        inc = s.scalar(select(Incident))
        assert [e.at for e in entries(s, inc, "acknowledged")] == [datetime(2026, 11, 20, 14, 3, tzinfo=UTC)]


def am(fp: str, at: datetime = T0):
    return ev(fp, at=at).model_copy(update={"source": "alertmanager"})


def test_an_alert_no_longer_sent_goes_stale_and_its_incident_closes_saying_so(database, make_settings, redactor):
    ingest = Ingest(make_settings(alert_repeat_interval_s=60, alert_stale_after_repeats=3), redactor)
    with database.session() as s:
        ingest.apply_alert(s, am("silenced"))
        ingest.apply_alert(s, am("resent"))
        ingest.apply_alert(s, ev("pd-like"))  # a source that never re-sends: never stale
        ingest.apply_alert(s, ev("other", name="DiskFull").model_copy(update={"source": "alertmanager"}))
    with database.session() as s:  # as if they were sent 150 s ago
        for alert in s.scalars(select(Alert)):
            alert.last_seen_at = utcnow() - timedelta(seconds=150)
    sent = utcnow() - timedelta(seconds=150)
    with database.session() as s:
        # Two and a half repeat intervals on: nothing is stale yet. "resent" is sent again; "silenced" is not.
        assert ingest.close_quiet_incidents(s, utcnow()) == []
        ingest.apply_alert(s, am("resent"))  # Alertmanager's repeat: a duplicate, but it was seen
        ingest.apply_alert(s, ev("pd-like", "resolved", ends=T0 + timedelta(minutes=1)))
    resent = utcnow()
    with database.session() as s:
        closed = ingest.close_quiet_incidents(s, sent + timedelta(seconds=181))
        status = dict(s.execute(select(Alert.fingerprint, Alert.status)).all())
        assert status == {"silenced": "stale", "resent": "firing", "pd-like": "resolved", "other": "stale"}
        disk = s.scalar(select(Incident).where(Incident.group_key == "checkout/DiskFull"))
        assert closed == [disk.id]  # its one alert is stale; HighErrorRate still has "resent" firing
        assert disk.closed_at == s.scalar(select(Alert.last_seen_at).where(Alert.fingerprint == "other"))
        assert "stale" in disk.close_note and "silenced, or" in disk.close_note
        assert len(entries(s, disk, "alert_stale")) == 1
        # The postmortem's Resolution and impact window end where the stale alert's evidence ends.
        from summarizer.record import analyse

        assert analyse(s, disk.id, ingest.settings).impact_end == disk.closed_at
    with database.session() as s:
        high = s.scalar(select(Incident).where(Incident.group_key == "checkout/HighErrorRate"))
        assert ingest.close_quiet_incidents(s, resent + timedelta(seconds=181)) == [high.id]
        assert "2 alert(s) stale" in high.close_note  # "silenced", then "resent" too
        # A stale alert that does resolve after all is recorded, and changes nothing else.
        ingest.apply_alert(s, am("silenced").model_copy(update={"status": "resolved", "ends_at": T0}))
        assert s.scalar(select(Alert.status).where(Alert.fingerprint == "silenced")) == "resolved"
