"""Canary: unique fake PII and secrets seeded into every kind of input and every field that can carry them
(free text; alert names, label keys and values, fingerprints, services; log attribute keys; ticket ids; the
`/incident close` note; a Slack request body logged URL-encoded), the whole pipeline run (consumers, drafting
with the real SmolLM2, the bot and the fake Slack, dead letters, logs, metrics), then every place data can end up
is searched for them: the database, the index files, every prompt the model saw, every Slack call, the log
output, /metrics and the topics we produce (incident commands, incident events, drafts, dead letters). Zero hits
allowed. Not searched: ticket-replies, where an approved reply greets the customer by name by design."""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import secrets
import string
import time
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

import summarizer.worker
from opsdraft.broker import free_port
from opsdraft.bus import read_topic
from opsdraft.models import Base, Draft, Incident
from opsdraft.privacy import install_log_redaction
from opsdraft_app.testing.slackfake import FakeSlack
from opsdraft_app.testing.slacksign import block_action_body, post_signed, slash_command_body
from tests.conftest import all_roles_running, require_smollm2, runtime_on_broker, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
APPROVER = "U0APPROVER"
FIRST = ["Marisol", "Thaddeus", "Ottoline", "Casimir", "Rosalind", "Evander", "Philippa", "Leopold"]
LAST = ["Quennell", "Ashdown", "Pembury", "Fairweather", "Lockhart", "Whitcombe", "Ravensworth", "Brightwell"]


def _luhn_card(rnd: random.Random) -> str:
    body = "4" + "".join(rnd.choice(string.digits) for _ in range(14))
    total = sum(d if i % 2 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(map(int, reversed(body))))
    return body + str(-total % 10)


def _iban(rnd: random.Random) -> str:
    bban = "".join(rnd.choice(string.digits) for _ in range(18))
    return f"DE{98 - int(bban + '131400') % 97:02d}{bban}"


def make_canaries() -> dict[str, str]:
    """Fresh values each run, so a hit can only come from this run's inputs."""
    rnd = random.Random(secrets.randbits(64))
    tok = lambda n, a=string.ascii_letters + string.digits: "".join(rnd.choice(a) for _ in range(n))  # noqa: E731
    jwt_head = base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode().rstrip("=")
    jwt_body = base64.urlsafe_b64encode(json.dumps({"sub": tok(8)}).encode()).decode().rstrip("=")
    return {
        "name": f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
        "email": f"canary.{tok(8, string.ascii_lowercase)}@example.com",
        "phone": f"+44 20 {rnd.randint(1000, 9999)} {rnd.randint(1000, 9999)}",
        "card": _luhn_card(rnd),
        "iban": _iban(rnd),
        "ip": f"203.0.{rnd.randint(1, 254)}.{rnd.randint(1, 254)}",
        "ssn": f"{rnd.randint(100, 665)}-{rnd.randint(10, 99)}-{rnd.randint(1000, 9999)}",
        "aws": "AKIA" + tok(16, string.ascii_uppercase + "234567"),
        "github": "ghp_" + tok(36),
        "jwt": f"{jwt_head}.{jwt_body}.{tok(32)}",
        "password": "Pw-" + tok(12),
    }


class RecordingGenerator:
    """Wraps the real generator: records every prompt, answers with the real model."""

    def __init__(self, inner, prompts: list):
        self.inner, self.prompts = inner, prompts

    def generate(self, messages, *args, **kwargs):
        self.prompts.append(json.dumps(messages))
        return self.inner.generate(messages, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _alert(c, status, ends="0001-01-01T00:00:00Z"):
    return {"version": "4", "status": status, "groupKey": "g", "alerts": [{
        "status": status, "labels": {
        # Identifiers too (a service is one in the log line below): the alert name, a label key, label values.
        "alertname": f"HighErrorRate paging {c['name']}", "service": "checkout", "severity": "critical",
        c["email"]: c["card"], "pager": c["phone"]},
        "annotations": {"summary": f"HTTP 503 on checkout v2.3.1; on-call {c['name']} paged at {c['phone']}",
                        "description": f"client {c['ip']} token {c['github']}"},
        "startsAt": "2026-11-20T14:02:10Z", "endsAt": ends, "fingerprint": f"canary-fp/{c['email']}"}]}



@pytest.fixture
def prompts(monkeypatch):
    seen: list[str] = []
    real = summarizer.worker.load_generator

    def recording(*args, **kwargs):
        gen = real(*args, **kwargs)
        return RecordingGenerator(gen, seen) if gen is not None else None

    monkeypatch.setattr(summarizer.worker, "load_generator", recording)
    return seen


@pytest.fixture
def log_output(make_settings):
    """Root-logger output through the same redacting filter that `opsdraft run` installs."""
    buf, root = io.StringIO(), logging.getLogger()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    install_log_redaction(make_settings())
    yield buf
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_canaries_never_leak(kafka_bootstrap, db_url, database, make_settings, tmp_path_factory, prompts,
                                   log_output):
    require_smollm2()
    c = make_canaries()
    with FakeSlack(token="xoxb-canary") as fake:
        settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, database_url=db_url, model="smollm2",
                                 model_cache_dir=tmp_path_factory.mktemp("models"), model_max_new_tokens=24,
                                 slack_api_url=fake.base_url, slack_bot_token="xoxb-canary",
                                 slack_signing_secret="canary-secret", slack_approvers=APPROVER,
                                 http_port=free_port(), incident_quiet_period_s=0.5)

        async with runtime_on_broker(settings, kafka_bootstrap) as rt:
            async with all_roles_running(rt):
                await _drive(rt, settings, fake, c)
                async with httpx.AsyncClient() as client:  # the server runs on this event loop
                    metrics = (await client.get(f"http://127.0.0.1:{settings.http_port}/metrics", timeout=10)).text
                dead = await read_topic(rt.bus, settings.topics.dead_letters, 1)
                t = settings.topics
                produced = {topic: await read_topic(rt.bus, topic, 1, timeout=10)
                            for topic in (t.incident_commands, t.incident_events, t.drafts_ready)}
            assert dead, "the malformed message never reached the dead-letter topic"
            assert produced[settings.topics.incident_commands], "the close command never reached its topic"
            assert prompts, "the model was never prompted: the canary did not cover drafting"
            logging.getLogger("canary").warning("ticket from %s <%s> card %s", c["name"], c["email"], c["card"])
            stores = _stores(rt, settings, fake)
    stores.update({"prompts": "\n".join(prompts), "log output": log_output.getvalue(), "metrics": metrics,
                   "dead letters": json.dumps(dead)})
    stores.update({f"topic {topic}": json.dumps(values) for topic, values in produced.items()})
    hits = [(k, where, text[max(0, text.index(v) - 80):text.index(v) + 80]) for where, text in stores.items()
            for k, v in c.items() if v in text]
    assert not hits, f"canaries leaked: {hits}"
    assert "<PERSON_" in stores["database"] and "<SECRET_" in stores["database"]  # redacted, not dropped


async def _drive(rt, settings, fake, c):
    t = settings.topics
    await rt.bus.send(t.alerts, _alert(c, "firing"))
    await rt.bus.send(t.logs, {"timestamp": "2026-11-20T14:03:00Z", "service": "checkout", "level": "ERROR",
                               "message": f"charge failed for {c['name']} <{c['email']}> card {c['card']} "
                                          f"aws_access_key_id={c['aws']} Authorization: Bearer {c['jwt']} "
                                          f"on db-01.prod from {c['ip']}"})
    await rt.bus.send(t.tickets, {
        "id": c["email"], "subject": f"Refund to {c['iban']}",  # a ticket id may be personal data too
        "body": f"Hi, I am {c['name']}. I was charged twice on {c['card']}. Call {c['phone']}. SSN {c['ssn']}. "
                f"My password is {c['password']} and my token {c['github']}.\nThanks,\n{c['name']}",
        "requester": {"name": c["name"], "email": c["email"]}, "created_at": "2026-11-20T14:05:00Z"})
    # Truncated on purpose: must be dead-lettered, redacted.
    await rt.bus.send(t.tickets, (f'{{"id": "T-78", "requester": {{"name": "{c["name"]}", "email": "{c["email"]}"}}, '
                                  f'"body": "key {c["aws"]} password={c["password"]} ssn {c["ssn"]}').encode())

    def incident():
        with rt.db.session() as s:
            return s.scalar(select(Incident).where(Incident.service == "checkout"))

    inc = await wait_until(incident, "the incident")
    await rt.bus.send(t.logs, {"timestamp": "2026-11-20T14:03:10Z", "service": c["email"], "level": "WARNING",
                               "message": "retrying", "attributes": {c["email"]: "x", "customer": c["name"]}})
    url = f"http://127.0.0.1:{settings.http_port}/slack/events"
    note = f"rolled back; thanks {c['name']} ({c['email']}), card {c['card']}, call {c['phone']}"
    close = slash_command_body("/incident", f"close {inc.id} {note}", user_id=APPROVER,
                               response_url=fake.response_url("close"))
    # Stale: refused, and what any library logs of its URL-encoded body must come out redacted.
    assert (await post_signed(url, settings.slack_signing_secret, close, timestamp=int(time.time()) - 3600)
            ).status_code in (401, 403)
    logging.getLogger("slack_bolt.canary").warning("unverified request body: %s", close.decode())
    logging.getLogger("canary").warning("form: %s", urlencode({"user": c["email"], "card": c["card"]}))
    assert (await post_signed(url, settings.slack_signing_secret, close)).status_code == 200

    def closed():
        with rt.db.session() as s:
            return s.scalar(select(Incident.close_note).where(Incident.id == inc.id))

    assert "<PERSON_" in await wait_until(closed, "the close note")
    await rt.bus.send(t.alerts, _alert(c, "resolved", ends="2026-11-20T14:20:00Z"))

    def posted(kind):
        with rt.db.session() as s:
            return s.scalar(select(Draft).where(Draft.kind == kind, Draft.slack_ts.is_not(None)))

    for kind in ("postmortem", "ticket_reply"):
        d = await wait_until(lambda k=kind: posted(k), f"the {kind} draft in Slack")
        body = block_action_body("draft_approve", str(d.id), APPROVER, d.slack_channel, d.slack_ts,
                                 message=fake.message(d.slack_channel, d.slack_ts))
        assert (await post_signed(url, settings.slack_signing_secret, body)).status_code == 200

    def published():
        with rt.db.session() as s:
            return len(s.scalars(select(Draft).where(Draft.status == "published")).all()) >= 2

    await wait_until(published, "both drafts to be published")


def _stores(rt, settings, fake) -> dict[str, str]:
    with rt.db.engine.connect() as conn:
        rows = [json.dumps([list(r) for r in conn.execute(table.select())], default=str)
                for table in Base.metadata.sorted_tables]
    stores = {"database": "\n".join(rows), "slack": json.dumps(fake.calls, default=str)}
    for path in settings.index_dir.rglob("*"):
        if path.is_file():
            stores[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return stores


async def test_canaries_said_in_an_incident_channel_never_leak(kafka_bootstrap, db_url, database, make_settings,
                                                               tmp_path_factory, prompts, log_output):
    """Channel mode: canaries typed into an incident's channel (messages, an edit, a pinned decision, a note, a
    role) are captured on its timeline, drafted from (status update and postmortem, the real SmolLM2) and
    posted: none may appear in the database, Slack calls, prompts, logs or topics' outbox."""
    require_smollm2()
    c = make_canaries()
    with FakeSlack(token="xoxb-canary") as fake:
        settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, database_url=db_url, model="smollm2",
                                 model_cache_dir=tmp_path_factory.mktemp("models"), model_max_new_tokens=24,
                                 slack_api_url=fake.base_url, slack_bot_token="xoxb-canary",
                                 slack_signing_secret="canary-secret", slack_approvers=APPROVER,
                                 http_port=free_port(), slack_channel_per_incident=True)

        async with runtime_on_broker(settings, kafka_bootstrap) as rt:
            async with all_roles_running(rt):
                await _say_canaries(rt, settings, fake, c)
            stores = _stores(rt, settings, fake)
    stores.update({"prompts": "\n".join(prompts), "log output": log_output.getvalue()})
    hits = [(k, where, text[max(0, text.index(v) - 80):text.index(v) + 80]) for where, text in stores.items()
            for k, v in c.items() if v in text]
    assert not hits, f"canaries leaked: {hits}"
    assert "<EMAIL_" in stores["database"] and "<SECRET_" in stores["database"]  # redacted, not dropped
    # The pinned message is a key event: the model is shown it, redacted, in the postmortem's fact sheet.
    assert "Decision: rotate <SECRET_" in stores["prompts"], "the pinned message never reached the model"


async def _say_canaries(rt, settings, fake, c):
    from opsdraft.models import IncidentChannel, TimelineEntry
    from opsdraft_app.testing.slacksign import slash_command_body
    from tests.test_end_to_end import _listening

    url = f"http://127.0.0.1:{settings.http_port}/slack/events"
    await wait_until(lambda: _listening(settings.http_port), "the HTTP server")

    async def send(body, **kw):
        assert (await post_signed(url, settings.slack_signing_secret, body, **kw)).status_code == 200

    def db(fn):
        with rt.db.session() as s:
            return fn(s)

    await send(slash_command_body("/incident", "declare Checkout charges failing sev2", user_id=APPROVER,
                                  response_url=fake.response_url("declare")))
    row = await wait_until(lambda: db(lambda s: s.scalar(select(IncidentChannel))), "the incident's channel")
    ch = row.channel_id
    said, event = fake.say(ch, APPROVER, f"{c['name']} ({c['email']}, {c['phone']}) says card {c['card']} "
                                         f"was charged twice; IBAN {c['iban']}, SSN {c['ssn']}")
    await send(event)
    decision, event = fake.say(ch, "U0OTHER", f"Decision: rotate {c['aws']} and {c['github']} now; "
                                              f"blocked {c['ip']}")
    await send(event)
    await send(fake.react(ch, decision["ts"], APPROVER))
    await send(fake.edit(ch, said["ts"], f"{c['name']} at {c['email']}: jwt {c['jwt']}, the old password is "
                                         f"{c['password']}"))
    for n, text in enumerate((f"note {c['name']} confirmed the refund to {c['iban']}", "status identified",
                              "update")):
        await send(slash_command_body("/incident", text, user_id=APPROVER, channel_id=ch,
                                      response_url=fake.response_url(f"live-{n}")))

    def captured():
        return db(lambda s: {e.kind for e in s.scalars(select(TimelineEntry).where(
            TimelineEntry.source_ref.like(f"slack:{ch}:%")))})

    await wait_until(lambda: captured() == {"message", "pinned"}, "the captured messages")

    def posted(kind):
        with rt.db.session() as s:
            return s.scalar(select(Draft).where(Draft.kind == kind, Draft.slack_ts.is_not(None)))

    upd = await wait_until(lambda: posted("status_update"), "the status update draft")
    await send(block_action_body("draft_approve", str(upd.id), APPROVER, upd.slack_channel, upd.slack_ts,
                                 message=fake.message(upd.slack_channel, upd.slack_ts)))
    await send(slash_command_body("/incident", f"close {row.incident_id} rolled back", user_id=APPROVER,
                                  channel_id=ch, response_url=fake.response_url("close")))
    pm = await wait_until(lambda: posted("postmortem"), "the postmortem draft")
    await send(block_action_body("draft_approve", str(pm.id), APPROVER, pm.slack_channel, pm.slack_ts,
                                 message=fake.message(pm.slack_channel, pm.slack_ts)))
    await wait_until(lambda: fake.channels[ch].get("is_archived"), "the channel archived after the postmortem")
