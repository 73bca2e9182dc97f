"""The HTTP surface besides Slack: the Alertmanager receiver, health and metrics."""

import json
import time

import httpx
import pytest

from opsdraft.broker import ensure_topics
from opsdraft.bus import Bus, read_topic
from opsdraft_app.http import build_http

WEBHOOK = {"version": "4", "status": "firing", "receiver": "opsdraft", "groupKey": "{}:{alertname=\"X\"}",
           "alerts": [{"status": "firing", "labels": {"alertname": "X", "job": "api"}, "annotations": {},
                       "startsAt": "2026-11-20T14:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f"}]}


@pytest.fixture
async def api(kafka_bootstrap, make_settings):
    # No webhook secrets or metrics token here (tests/test_security_inputs.py checks those); JSON declared.
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, insecure_dev=True)
    await ensure_topics(kafka_bootstrap, settings.topics.all())
    bus = await Bus(kafka_bootstrap).start()
    app = build_http(settings, bus, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://opsdraft",
                                 headers={"content-type": "application/json"}) as client:
        yield client, bus, settings
    await bus.stop()


async def test_alertmanager_webhook_is_produced_to_alerts(api):
    client, bus, settings = api
    r = await client.post("/webhooks/alertmanager", content=json.dumps(WEBHOOK))
    assert r.status_code == 202 and r.json() == {"accepted": 1}
    (msg,) = await read_topic(bus, settings.topics.alerts, 1)
    assert msg == WEBHOOK  # produced as Alertmanager sent it; the consumers parse it


@pytest.mark.parametrize("body,reason", [
    (b"{not json", "invalid alertmanager payload"),
    (b'{"status": "firing"}', "no 'alerts' list"),
    (json.dumps(WEBHOOK | {"alerts": [{"status": "firing", "labels": {}}]}).encode(), "alertname"),
])
async def test_bad_webhooks_get_400_with_a_reason(api, body, reason):
    client, _, _ = api
    r = await client.post("/webhooks/alertmanager", content=body)
    assert r.status_code == 400 and reason in r.json()["detail"]


async def test_grafana_pagerduty_and_ticket_webhooks(api):
    from tests.test_vendors import GRAFANA, pagerduty, zendesk

    client, bus, settings = api
    for path, body in [("grafana", GRAFANA), ("pagerduty", pagerduty("incident.triggered")),
                       ("tickets", zendesk()),
                       ("tickets", {"id": "T-5", "subject": "s", "body": "b", "requester": "r",
                                    "created_at": "2026-11-20T15:00:00Z"})]:
        r = await client.post(f"/webhooks/{path}", content=json.dumps(body))
        assert r.status_code == 202, r.text
    alerts = await read_topic(bus, settings.topics.alerts, 2)
    tickets = await read_topic(bus, settings.topics.tickets, 2)
    assert len(alerts) == 2 and len(tickets) == 2
    bad = [("grafana", WEBHOOK, "orgId"), ("pagerduty", {"event": {}}, "event_type"),
           ("tickets", {"id": "T-1"}, "subject"), ("tickets", [1], "JSON object")]
    for path, body, reason in bad:
        r = await client.post(f"/webhooks/{path}", content=json.dumps(body))
        assert r.status_code == 400 and reason in r.json()["detail"], (path, r.text)


async def test_health_and_metrics(api):
    client, _, _ = api
    assert (await client.get("/healthz")).json() == {"status": "ok", "roles": {}}
    await client.post("/webhooks/alertmanager", content=b"{}")
    metrics = (await client.get("/metrics")).text
    assert 'opsdraft_webhooks_total{outcome="rejected",source="alertmanager"}' in metrics
    for family in ("opsdraft_messages_consumed_total", "opsdraft_dead_letters_total", "opsdraft_open_incidents",
                   "opsdraft_message_failures_total", "opsdraft_processing_seconds", "opsdraft_draft_seconds"):
        assert f"# TYPE {family}" in metrics


async def test_slack_endpoint_absent_without_bot(api):
    client, _, _ = api
    r = await client.post("/slack/events", content=b"x", headers={"X-Slack-Request-Timestamp": str(int(time.time()))})
    assert r.status_code == 404
