import pytest

from consumers.payloads import parse_alerts, parse_log, parse_ticket
from opsdraft.bus import InvalidMessage

AM = {
    "version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": "resolved", "receiver": "r",
    "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "HighErrorRate", "job": "checkout", "severity": "critical"},
         "annotations": {"summary": "5xx high"}, "startsAt": "2026-11-20T14:02:10Z",
         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p", "fingerprint": "aaa"},
        {"status": "resolved", "labels": {"alertname": "HighLatency", "service": "api", "severity": "warning"},
         "annotations": {}, "startsAt": "2026-11-20T14:00:00Z", "endsAt": "2026-11-20T14:30:00Z",
         "generatorURL": "http://p", "fingerprint": "bbb"},
    ],
}


def test_alertmanager_mixed_firing_and_resolved():
    firing, resolved = parse_alerts(AM)
    assert (firing.fingerprint, firing.status, firing.service, firing.severity) == ("aaa", "firing", "checkout", "sev1")
    assert firing.ends_at is None and firing.summary == "5xx high"
    assert (resolved.status, resolved.service, resolved.severity) == ("resolved", "api", "sev3")
    assert resolved.ends_at.isoformat() == "2026-11-20T14:30:00+00:00"


def test_generic_alert():
    (ev,) = parse_alerts({"fingerprint": "f1", "name": "DiskFull", "service": "db", "status": "firing",
                          "severity": "high", "starts_at": "2026-11-20T14:00:00+01:00"})
    assert ev.severity == "sev2" and ev.starts_at.utcoffset().total_seconds() == 0 and ev.source == "generic"


@pytest.mark.parametrize("payload,reason", [
    ([1, 2], "JSON object"),
    ({"alerts": []}, "alerts"),
    ({"status": "firing", "alerts": [{"status": "firing", "labels": {}, "startsAt": "2026-01-01T00:00:00Z"}]},
     "alertname"),
    ({"fingerprint": "f", "name": "n", "service": "s", "status": "burning", "starts_at": "2026-01-01T00:00:00Z"},
     "status"),
    ({"fingerprint": "f", "name": "n", "service": "s", "status": "firing"}, "starts_at"),
])
def test_bad_alerts_name_the_problem(payload, reason):
    with pytest.raises(InvalidMessage, match=reason):
        parse_alerts(payload)


def test_log_line():
    line = parse_log({"timestamp": "2026-11-20T14:02:05Z", "service": "checkout", "level": "warn",
                      "message": "slow", "attributes": {"ms": 900}})
    assert line.level == "WARNING" and line.attributes == {"ms": 900}
    with pytest.raises(InvalidMessage, match="level"):
        parse_log({"timestamp": "2026-11-20T14:02:05Z", "service": "s", "level": "LOUD", "message": "m"})
    with pytest.raises(InvalidMessage, match="timestamp"):
        parse_log({"timestamp": "yesterday", "service": "s", "message": "m"})


def test_ticket_requester_forms():
    t = parse_ticket({"id": "T-1", "subject": "s", "body": "b", "requester": {"name": "A", "email": "a@x.io"},
                      "created_at": "2026-11-20T14:00:00Z", "tags": ["x"]})
    assert t.requester_text() == "A <a@x.io>"
    with pytest.raises(InvalidMessage, match="subject"):
        parse_ticket({"id": "T-1", "subject": "", "body": "b", "requester": "A", "created_at": "2026-11-20T14:00:00Z"})
