"""Issue 16, the input side: each webhook sender's own authentication checked on the raw body (nothing reaches
the topic unless it passes), JSON-only receivers, a bearer on /metrics, Slack replays and malformed headers, and
`opsdraft run` / `opsdraft check` on insecure settings."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from opsdraft.broker import ensure_topics
from opsdraft.bus import Bus, read_topic
from opsdraft.models import Outbox, SeenSlackRequest
from opsdraft_app.http import build_http
from opsdraft_app.testing.slacksign import post_signed, sign, slash_command_body
from tests.test_bot import bot_env
from tests.test_vendors import GRAFANA, pagerduty

ROOT = Path(__file__).resolve().parents[1]
SECRETS = dict(webhook_alertmanager_secrets=["am-new", "am-old", "prom:b4sic"],
               webhook_grafana_secrets=["gf-secret"], webhook_pagerduty_secrets=["pd-new", "pd-old"],
               webhook_tickets_secrets=["tk-token"], webhook_zendesk_secrets=["zd-new", "zd-old"],
               webhook_changes_secrets=["gh-secret"], metrics_token="scrape-me")
JSON = {"content-type": "application/json"}


def alert(fingerprint: str) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "receiver": "opsdraft", "groupKey": fingerprint,
                       "alerts": [{"status": "firing", "labels": {"alertname": "X", "job": "api"},
                                   "annotations": {}, "startsAt": "2026-11-20T14:00:00Z",
                                   "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fingerprint}]}).encode()


def pagerduty_event(incident: str) -> bytes:
    body = pagerduty("incident.triggered")
    body["event"]["data"]["id"] = incident
    return json.dumps(body).encode()


def grafana(group: str) -> bytes:
    return json.dumps({**GRAFANA, "groupKey": group}).encode()


def ticket(tid: str) -> bytes:
    return json.dumps({"id": tid, "subject": "Refund", "body": "I was charged twice", "requester": "a customer",
                       "created_at": "2026-11-20T14:00:00Z"}).encode()


def change(cid: str) -> bytes:
    return json.dumps({"service": "checkout", "version": "v2", "kind": "deploy", "actor": "ci",
                       "at": "2026-11-20T14:01:50Z", "description": "Deploy checkout", "id": cid}).encode()


def hexmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def basic(pair: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode(), **JSON}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **JSON}


def zendesk_headers(secret: str, body: bytes, at: datetime) -> dict[str, str]:
    ts = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    mac = base64.b64encode(hmac.new(secret.encode(), ts.encode() + body, hashlib.sha256).digest()).decode()
    return {"x-zendesk-webhook-signature": mac, "x-zendesk-webhook-signature-timestamp": ts, **JSON}


def counted(source: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("opsdraft_webhooks_total", {"source": source, "outcome": outcome}) or 0.0


@pytest.fixture
async def secured(kafka_bootstrap, make_settings):
    async def make(**overrides):
        settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, **{**SECRETS, **overrides})
        await ensure_topics(kafka_bootstrap, settings.topics.all())
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_http(settings, bus, None)),
                                   base_url="http://opsdraft")
        clients.append(client)
        return client, settings

    bus = await Bus(kafka_bootstrap).start()
    clients: list[httpx.AsyncClient] = []
    yield make, bus
    for c in clients:
        await c.aclose()
    await bus.stop()


async def on_topic(bus, topic: str) -> list:
    """Everything on the topic (read until it stays quiet): what the receivers produced."""
    return await read_topic(bus, topic, at_least=10**6, timeout=4)


async def test_alertmanager_bearer_basic_and_rotation(secured):
    make, bus = secured
    client, settings = await make()
    before = counted("alertmanager", "unauthorized")
    post = client.post
    for body, headers in ((alert("new"), bearer("am-new")), (alert("old"), bearer("am-old")),
                          (alert("basic"), basic("prom:b4sic"))):
        assert (await post("/webhooks/alertmanager", content=body, headers=headers)).status_code == 202
    for body, headers in ((alert("wrong"), bearer("am-wrong")), (alert("none"), JSON),
                          (alert("badbasic"), basic("prom:nope")), (alert("garbled"), basic("~~")),
                          (alert("asbasic"), basic("x:am-new")),
                          (alert("scheme"), {"authorization": "am-new", **JSON})):
        r = await post("/webhooks/alertmanager", content=body, headers=headers)
        assert r.status_code == 401 and "am-" not in r.text, body
    assert counted("alertmanager", "unauthorized") == before + 6
    produced = {m["groupKey"] for m in await on_topic(bus, settings.topics.alerts)}
    assert produced == {"new", "old", "basic"}


async def test_grafana_signature_with_and_without_timestamp(secured):
    make, bus = secured
    client, settings = await make()
    plain = grafana("gf-signed")
    r = await client.post("/webhooks/grafana", content=plain,
                          headers={"X-Grafana-Alerting-Signature": hexmac("gf-secret", plain), **JSON})
    assert r.status_code == 202
    assert (await client.post("/webhooks/grafana", content=grafana("gf-bearer"), headers=bearer("gf-secret"))
            ).status_code == 202
    forged = grafana("gf-forged")
    assert (await client.post("/webhooks/grafana", content=forged, headers={
        "X-Grafana-Alerting-Signature": hexmac("not-it", forged), **JSON})).status_code == 401
    # Signed, then the body changed on the way.
    assert (await client.post("/webhooks/grafana", content=grafana("gf-tampered"), headers={
        "X-Grafana-Alerting-Signature": hexmac("gf-secret", plain), **JSON})).status_code == 401
    assert {m["groupKey"] for m in await on_topic(bus, settings.topics.alerts)} == {"gf-signed", "gf-bearer"}

    client, settings = await make(webhook_grafana_signature_header="X-Sig", webhook_grafana_timestamp_header="X-Ts")
    now, body = str(int(time.time())), grafana("gf-ts")

    def headers(ts: str, message: bytes) -> dict[str, str]:
        return {"X-Sig": hexmac("gf-secret", message), "X-Ts": ts, **JSON}

    assert (await client.post("/webhooks/grafana", content=body, headers=headers(now, f"{now}:".encode() + body))
            ).status_code == 202
    stale = str(int(time.time()) - 600)
    for bad in (headers(stale, f"{stale}:".encode() + grafana("gf-stale")),  # a replay, too late
                headers(now, grafana("gf-nots")),  # the body alone is not what is signed here
                {"X-Sig": hexmac("gf-secret", grafana("gf-missing")), **JSON},  # no timestamp header
                headers("yesterday", b"yesterday:" + grafana("gf-junk"))):
        r = await client.post("/webhooks/grafana", content=json.dumps({"groupKey": "x"}).encode(), headers=bad)
        assert r.status_code == 401
    assert [m["groupKey"] for m in await on_topic(bus, settings.topics.alerts)] == ["gf-ts"]


async def test_pagerduty_v3_signatures_during_rotation(secured):
    make, bus = secured
    client, settings = await make()
    one, two = pagerduty_event("P1"), pagerduty_event("P2")
    # During a rotation PagerDuty sends one v1= entry per secret; any may match.
    r = await client.post("/webhooks/pagerduty", content=one,
                          headers={"X-PagerDuty-Signature": f"v1={hexmac('elsewhere', one)},v1={hexmac('pd-old', one)}",
                                   **JSON})
    assert r.status_code == 202, r.text
    r = await client.post("/webhooks/pagerduty", content=two,
                          headers={"X-PagerDuty-Signature": f"v1={hexmac('pd-new', two)}", **JSON})
    assert r.status_code == 202
    for bad in ({"X-PagerDuty-Signature": f"v1={hexmac('pd-new', one)}"},  # another body's signature
                {"X-PagerDuty-Signature": f"v0={hexmac('pd-new', pagerduty_event('P3'))}"},
                {"X-PagerDuty-Signature": ""}, {},
                {"authorization": "Bearer pd-new"}):  # PagerDuty signs; a bearer is not its scheme
        r = await client.post("/webhooks/pagerduty", content=pagerduty_event("P3"), headers={**bad, **JSON})
        assert r.status_code == 401
    produced = [m["event"]["data"]["id"] for m in await on_topic(bus, settings.topics.alerts)]
    assert sorted(produced) == ["P1", "P2"]


async def test_zendesk_signature_age_and_generic_bearer(secured):
    make, bus = secured
    client, settings = await make()
    now = datetime.now(UTC)
    for tid, secret in (("Z-new", "zd-new"), ("Z-old", "zd-old")):
        body = ticket(tid)
        r = await client.post("/webhooks/tickets", content=body, headers=zendesk_headers(secret, body, now))
        assert r.status_code == 202, r.text
    assert (await client.post("/webhooks/tickets", content=ticket("G-1"), headers=bearer("tk-token"))
            ).status_code == 202
    stale_body = ticket("Z-stale")
    for body, headers in ((stale_body, zendesk_headers("zd-new", stale_body, now - timedelta(minutes=10))),
                          (ticket("Z-wrong"), zendesk_headers("zd-wrong", ticket("Z-wrong"), now)),
                          (ticket("Z-other"), zendesk_headers("zd-new", ticket("Z-body"), now)),
                          (ticket("Z-bearer"), bearer("zd-new")),  # a Zendesk secret is no bearer token
                          (ticket("G-none"), JSON)):
        assert (await client.post("/webhooks/tickets", content=body, headers=headers)).status_code == 401
    produced = sorted(m["id"] for m in await on_topic(bus, settings.topics.tickets))
    assert produced == ["G-1", "Z-new", "Z-old"]


async def test_changes_bearer_and_github_signature(secured):
    make, bus = secured
    client, settings = await make()
    signed = change("c-github")
    r = await client.post("/webhooks/changes", content=signed,
                          headers={"X-Hub-Signature-256": "sha256=" + hexmac("gh-secret", signed), **JSON})
    assert r.status_code == 202
    assert (await client.post("/webhooks/changes", content=change("c-bearer"), headers=bearer("gh-secret"))
            ).status_code == 202
    for body, headers in ((change("c-forged"), {"X-Hub-Signature-256": "sha256=" + hexmac("x", b"{}"), **JSON}),
                          (change("c-none"), JSON), (change("c-wrong"), bearer("nope"))):
        assert (await client.post("/webhooks/changes", content=body, headers=headers)).status_code == 401
    assert sorted(m["id"] for m in await on_topic(bus, settings.topics.changes)) == ["c-bearer", "c-github"]


async def test_only_json_is_taken_so_cross_site_forms_are_refused(secured):
    make, bus = secured
    client, settings = await make()
    before = counted("tickets", "unsupported_media_type")
    for path, body in (("alertmanager", alert("form")), ("tickets", ticket("T-form")), ("changes", change("c-f"))):
        for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", None):
            headers = {"authorization": "Bearer tk-token"} | ({"content-type": ctype} if ctype else {})
            r = await client.post(f"/webhooks/{path}", content=body, headers=headers)
            assert r.status_code == 415, (path, ctype)
    assert counted("tickets", "unsupported_media_type") == before + 4
    # JSON with a charset is JSON.
    r = await client.post("/webhooks/tickets", content=ticket("T-json"),
                          headers={"authorization": "Bearer tk-token",
                                   "content-type": "application/json; charset=utf-8"})
    assert r.status_code == 202
    assert [m["id"] for m in await on_topic(bus, settings.topics.tickets)] == ["T-json"]


async def test_a_receiver_without_credentials_refuses_unless_a_development_run(secured):
    make, _ = secured
    client, _ = await make(webhook_alertmanager_secrets=[])
    r = await client.post("/webhooks/alertmanager", content=alert("open"), headers=JSON)
    assert r.status_code == 401 and "OPSDRAFT_WEBHOOK_ALERTMANAGER_SECRETS" in r.text
    client, _ = await make(webhook_alertmanager_secrets=[], insecure_dev=True)
    assert (await client.post("/webhooks/alertmanager", content=alert("dev"), headers=JSON)).status_code == 202


async def test_metrics_need_the_bearer_token(secured):
    make, _ = secured
    client, _ = await make()
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"authorization": "Bearer nope"})).status_code == 401
    r = await client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
    assert r.status_code == 200 and "opsdraft_webhooks_total" in r.text
    client, _ = await make(metrics_token="")
    assert (await client.get("/metrics")).status_code == 401  # no token and no development switch: closed


# ------------------------------------------------------------------------------------------------ Slack requests


@pytest.fixture
def bot(database, make_settings, redactor, fake):
    yield from bot_env(database, make_settings, redactor, fake)


async def test_a_replayed_slash_command_runs_once(bot):
    settings, db, client, fake = bot
    body = slash_command_body("/ticket", "suggest T-1", response_url=fake.response_url("replay"))
    headers = sign(settings.slack_signing_secret, body)
    first = await client.post("/slack/events", content=body, headers=headers)
    assert first.status_code == 200
    for _ in range(4):  # the same signature, timestamp and body, well within Slack's 5 minutes: acked, not run
        assert (await client.post("/slack/events", content=body, headers=headers)).status_code == 200
    await fake.await_for(lambda c: c.get("key") == "replay")
    await asyncio.sleep(1)
    assert len([c for c in fake.calls if c.get("key") == "replay"]) == 1  # each run answers once
    with db.session() as s:
        assert s.query(Outbox).filter_by(topic=settings.topics.draft_requests).count() == 1
        assert s.query(SeenSlackRequest).count() == 1
    # A new request (Slack's own next one) is signed anew and runs.
    again = slash_command_body("/ticket", "suggest T-1", response_url=fake.response_url("again"))
    assert (await post_signed("http://bot/slack/events", settings.slack_signing_secret, again, client=client)
            ).status_code == 200


@pytest.mark.parametrize("headers", [
    {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"},
    {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=00"},
    {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"},
    {"X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠".encode(), "X-Slack-Signature": "v0=00"},  # non-ASCII digits
    {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=00"},
    {"X-Slack-Signature": "v0=00"},
    {"X-Slack-Request-Timestamp": str(int(time.time()))},
    {},
])
async def test_malformed_slack_headers_get_401(bot, headers):
    _, _, client, _ = bot
    body = slash_command_body("/incident", "list")
    r = await client.post("/slack/events", content=body,
                          headers={"content-type": "application/x-www-form-urlencoded", **headers})
    assert r.status_code == 401


async def test_a_stale_slack_request_logs_no_body(bot, caplog):
    settings, _, client, fake = bot
    caplog.set_level(logging.DEBUG)
    body = slash_command_body("/incident", "close 1 refund for jane.doe@example.com card 4111111111111111")
    assert b"%40" in body
    stale = int(time.time()) - 10 * 60
    r = await post_signed("http://bot/slack/events", settings.slack_signing_secret, body, timestamp=stale,
                          client=client)
    assert r.status_code == 401
    # Should one still reach Bolt's own check (built while the root logs everything, so Bolt would log it),
    # Bolt's record of it holds no body.
    bolt = AsyncApp(signing_secret=settings.slack_signing_secret,
                    client=AsyncWebClient(token="xoxb-test", base_url=fake.base_url))
    response = await bolt.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=sign(
        settings.slack_signing_secret, body, stale)))
    assert response.status == 401
    assert "Invalid request signature detected" in caplog.text
    logged = caplog.text
    assert "%40" not in logged and "jane.doe" not in logged and "4111111111111111" not in logged


# ------------------------------------------------------------------------------------------- run and check


def cli(*args: str, env_extra: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDRAFT_")}
    env |= {"OPSDRAFT_DATA_DIR": str(cwd / "data"), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "opsdraft_app.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


SECURE_ENV = {"OPSDRAFT_SLACK_SIGNING_SECRET": "a-real-signing-secret", "OPSDRAFT_SLACK_BOT_TOKEN": "xoxb-real",
              **{f"OPSDRAFT_{k.upper()}": json.dumps(v) if isinstance(v, list) else v for k, v in SECRETS.items()}}


def test_run_with_defaults_refuses_in_one_line(tmp_path):
    done = cli("run", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for name in ("OPSDRAFT_SLACK_SIGNING_SECRET", "OPSDRAFT_SLACK_BOT_TOKEN", "OPSDRAFT_INSECURE_DEV",
                 "OPSDRAFT_METRICS_TOKEN", "OPSDRAFT_WEBHOOK_ALERTMANAGER_SECRETS"):
        assert name in lines[0]
    assert not (tmp_path / "data").exists()  # refused before anything started or was written
    # Empty is as bad as the placeholder.
    empty = cli("run", "--roles", "bot", cwd=tmp_path, env_extra={**SECURE_ENV, "OPSDRAFT_SLACK_BOT_TOKEN": ""})
    assert empty.returncode == 1 and "OPSDRAFT_SLACK_BOT_TOKEN" in empty.stderr
    assert "OPSDRAFT_SLACK_SIGNING_SECRET" not in empty.stderr


def test_check_lists_every_insecure_setting(tmp_path):
    done = cli("check", cwd=tmp_path)
    assert done.returncode == 1
    found = [ln for ln in done.stdout.splitlines() if ln.startswith("insecure: ")]
    assert len(found) == 2 + 5 + 1  # two Slack credentials, five receivers, /metrics
    assert any("OPSDRAFT_WEBHOOK_TICKETS_SECRETS or OPSDRAFT_WEBHOOK_ZENDESK_SECRETS" in ln for ln in found)
    ok = cli("check", cwd=tmp_path, env_extra=SECURE_ENV)
    assert ok.returncode == 0 and "no insecure settings" in ok.stdout, ok.stdout + ok.stderr
    dev = cli("check", cwd=tmp_path, env_extra={**SECURE_ENV, "OPSDRAFT_INSECURE_DEV": "true"})
    assert dev.returncode == 1 and "OPSDRAFT_INSECURE_DEV is true" in dev.stdout


def test_a_development_run_starts_with_a_loud_warning(tmp_path, kafka_bootstrap):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDRAFT_")}
    env |= {"OPSDRAFT_DATA_DIR": str(tmp_path / "data"), "OPSDRAFT_INSECURE_DEV": "true",
            "OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "OPSDRAFT_REDACTION_MODE": "patterns",
            "OPSDRAFT_HTTP_PORT": "0", "OPSDRAFT_REDACTION_KEY": "k"}
    proc = subprocess.Popen([sys.executable, "-m", "opsdraft_app.cli", "run", "--roles", "http"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, seen = time.monotonic() + 90, ""
        while time.monotonic() < deadline and "opsdraft running" not in seen:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen += line
        assert "WARNING" in seen and "INSECURE DEVELOPMENT RUN" in seen and "OPSDRAFT_SLACK_SIGNING_SECRET" in seen
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
