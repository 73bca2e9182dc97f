"""Webhooks tell the truth: a receiver and the consumer that applies what it produced parse with one function,
so every hostile body gets the same verdict in both (202 and applied, or 400); bodies over the broker's limit are
split per alert or refused with 413; a broker that refuses is a counted 503; PagerDuty events we do not use are
accepted as nothing."""

import json

import httpx
import pytest

from consumers.sources import parse_alerts
from opsdraft.broker import ensure_topics
from opsdraft.bus import Bus, InvalidMessage, Message, read_topic
from opsdraft_app.http import build_http
from tests.test_http import WEBHOOK
from tests.test_vendors import pagerduty


@pytest.fixture
async def api(kafka_bootstrap, make_settings):
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, insecure_dev=True)  # no webhook secrets
    await ensure_topics(kafka_bootstrap, settings.topics.all())
    bus = await Bus(kafka_bootstrap).start()
    app = build_http(settings, bus, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://opsdraft",
                                 headers={"content-type": "application/json"}) as client:
        yield client, bus, settings
    await bus.stop()


def consumer_verdict(topic: str, raw: bytes) -> str:
    """What the consumers do with these bytes: parse them exactly as consumers/worker.py does."""
    try:
        events = parse_alerts(Message(topic, 0, 0, None, raw, {}).json())
        for ev in events:  # applying stores and redacts these strings: they must be real Unicode
            ev.model_dump_json().encode("utf-8")
        return "applied"
    except InvalidMessage:
        return "refused"


def alert_with(summary_json: str) -> bytes:
    """The test webhook with its alert's summary annotation spliced in as raw JSON text."""
    return json.dumps(WEBHOOK).replace('"annotations": {}', f'"annotations": {{"summary": {summary_json}}}').encode()


HOSTILE = {
    "utf-8 BOM": b"\xef\xbb\xbf" + json.dumps(WEBHOOK).encode(),
    "escaped lone surrogate": alert_with('"\\ud800"'),
    "100k-deep JSON": json.dumps(WEBHOOK)[:-1].encode() + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "5,000-digit number": json.dumps(WEBHOOK)[:-1].encode() + b', "x": ' + b"7" * 5000 + b"}",
    "5,000-digit float": json.dumps(WEBHOOK)[:-1].encode() + b', "x": ' + b"7" * 5000 + b".5}",
    "NaN": json.dumps(WEBHOOK)[:-1].encode() + b', "x": NaN}',
}


@pytest.mark.parametrize("case", HOSTILE)
async def test_receiver_and_consumer_give_the_same_verdict(api, case):
    client, bus, settings = api
    raw = HOSTILE[case]
    r = await client.post("/webhooks/alertmanager", content=raw)
    assert r.status_code in (202, 400), (case, r.status_code, r.text[:200])
    verdict = consumer_verdict(settings.topics.alerts, raw)
    assert (r.status_code == 202) == (verdict == "applied"), (case, r.status_code, verdict)
    if case == "utf-8 BOM":  # RFC 8259 lets a parser ignore it: accepted, and produced as sent
        assert r.json() == {"accepted": 1}
        (msg,) = await read_topic(bus, settings.topics.alerts, 1)
        assert msg == WEBHOOK
    else:
        assert r.status_code == 400, case


async def test_a_group_over_the_broker_limit_is_split_per_alert_in_order(api):
    client, bus, settings = api
    limit = settings.kafka_max_message_bytes
    alerts = [{"status": "firing", "labels": {"alertname": "Big", "job": "api", "n": str(i)},
               "annotations": {"description": "x" * 100_000}, "startsAt": "2026-11-20T14:00:00Z",
               "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"big{i}"} for i in range(30)]
    body = json.dumps(WEBHOOK | {"alerts": alerts}).encode()
    assert limit < len(body) < 5 * 1024 * 1024
    r = await client.post("/webhooks/alertmanager", content=body)
    assert r.status_code == 202 and r.json() == {"accepted": 30}, r.text[:300]
    msgs = await read_topic(bus, settings.topics.alerts, 30)
    assert [m["alerts"][0]["fingerprint"] for m in msgs] == [f"big{i}" for i in range(30)]  # in order
    for m in msgs:  # each one a whole Alertmanager body of one alert, under the limit, that the consumers apply
        raw = json.dumps(m).encode()
        assert len(raw) < limit and m["groupKey"] == WEBHOOK["groupKey"] and len(m["alerts"]) == 1
        assert consumer_verdict(settings.topics.alerts, raw) == "applied"


async def test_what_cannot_be_split_gets_413_at_the_real_limit(api):
    client, _, settings = api
    huge = WEBHOOK | {"alerts": [WEBHOOK["alerts"][0] | {"annotations": {"summary": "y" * 1_100_000}}]}
    r = await client.post("/webhooks/alertmanager", content=json.dumps(huge))
    assert r.status_code == 413 and "alone" in r.json()["detail"]
    ticket = {"id": "T-9", "subject": "s", "body": "b" * 90_000, "requester": "r", "created_at": "2026-11-20T15:00:00Z",
              "tags": ["t" * 1000] * 1100}
    r = await client.post("/webhooks/tickets", content=json.dumps(ticket))
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    just_under = dict(ticket, tags=["t" * 1000] * 800)
    r = await client.post("/webhooks/tickets", content=json.dumps(just_under))
    assert r.status_code == 202, r.text[:300]


async def test_a_broker_that_refuses_is_a_counted_503(api):
    client, bus, _ = api

    def count() -> float:
        from prometheus_client import REGISTRY

        return REGISTRY.get_sample_value("opsdraft_http_5xx_total", {"route": "/webhooks/alertmanager"}) or 0.0

    before = count()
    await bus.stop()  # the producer is closed: sending fails as it does when the broker is unreachable
    r = await client.post("/webhooks/alertmanager", content=json.dumps(WEBHOOK))
    assert r.status_code == 503 and "retry" in r.json()["detail"]
    assert count() == before + 1
    metrics = (await client.get("/metrics")).text
    assert 'opsdraft_webhooks_total{outcome="error",source="alertmanager"}' in metrics
    await bus.start()  # for the fixture's stop


@pytest.mark.parametrize("event_type", ["incident.annotated", "service.updated", "incident.priority_updated"])
async def test_pagerduty_events_we_do_not_use_are_accepted_as_nothing(api, event_type):
    client, bus, settings = api
    body = pagerduty(event_type)
    if event_type == "service.updated":  # another resource's shape
        body["event"] |= {"resource_type": "service", "data": {"id": "PF9KMXH", "type": "service", "name": "checkout"}}
    r = await client.post("/webhooks/pagerduty", content=json.dumps(body))
    assert r.status_code == 202 and r.json() == {"accepted": 0}, r.text
    assert parse_alerts(body) == []  # the consumers would apply nothing either
    r = await client.post("/webhooks/pagerduty", content=json.dumps(pagerduty("incident.triggered")))
    assert r.status_code == 202 and r.json() == {"accepted": 1}
    (msg,) = await read_topic(bus, settings.topics.alerts, 1, timeout=5)
    assert msg["event"]["event_type"] == "incident.triggered"  # only the used one was produced


def test_every_parse_path_refuses_cleanly_or_applies():
    """The consumers' other parsers use the same function: hostile bytes are InvalidMessage (dead-lettered),
    never another exception that would stop the consumer; a log line with a BOM is read as JSON."""
    from consumers.worker import Dispatcher

    log = {"timestamp": "2026-11-20T14:00:00Z", "service": "checkout", "level": "ERROR", "message": "boom"}
    kind, line = Dispatcher.parse_log(Message("logs", 0, 0, None, b"\xef\xbb\xbf" + json.dumps(log).encode(), {}))
    assert kind == "log" and line.service == "checkout" and line.message == "boom"
    for case, raw in HOSTILE.items():
        if case == "utf-8 BOM":
            continue
        for parse in (Dispatcher.parse_log, Dispatcher.parse_ticket, Dispatcher.parse_command,
                      Dispatcher.parse_change, Dispatcher.parse_alerts):
            with pytest.raises(InvalidMessage):
                parse(Message("t", 0, 0, None, raw, {}))
