"""`opsdraft demo`: the whole pipeline offline — embedded broker, SQLite, every role, a local fake Slack —
from raw events to an approved postmortem and an approved ticket reply."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

from bot.ids import ActionId
from opsdraft.broker import free_port
from opsdraft.bus import read_topic
from opsdraft.models import Alert, Draft, Incident, LogEvent, Ticket
from opsdraft_app.testing.slackfake import FakeSlack, render_message
from opsdraft_app.testing.slacksign import block_action_body, post_signed, slash_command_body
from summarizer.reply_checks import markup_in

SAMPLE = Path(__file__).with_name("sample") / "demo-events.jsonl"
# Every piece of personal data or secret in the sample: none may appear in any output or store.
SAMPLE_SECRETS = [
    "Maria Gonzalez", "maria.gonzalez@example.com", "4111 1111 1111 1111", "S3cr3t-Pa55w0rd",
    "AKIAIOSFODNN7EXAMPLE", "Sam Lee", "sam.lee@shop.example", "Daniel Okafor", "daniel.okafor@example.net",
    "+1 415 555 0134", "Priya Raman", "priya.raman@example.org",
]
APPROVER = "U0DEMOAPPROVER"



class SlackWatcher:
    """Prints every message the bot posts or updates in the fake Slack, as it happens."""

    def __init__(self, fake: FakeSlack, console: Console):
        self.fake, self.console, self.seen = fake, console, 0

    def flush(self) -> None:
        calls = self.fake.calls[self.seen:]
        self.seen += len(calls)
        for c in calls:
            if c["method"] not in ("chat.postMessage", "chat.update") or not c.get("response", {}).get("ok"):
                continue
            msg = c["response"].get("message", {}) | {"blocks": c["args"].get("blocks"), "text": c["args"].get("text")}
            verb = "posted" if c["method"] == "chat.postMessage" else "updated"
            self.console.print(Panel(Text(render_message(msg)), title=f"Slack {verb} in {c['args'].get('channel')}",
                                     title_align="left", border_style="cyan"))


def run_demo(console: Console, model: str | None = None, keep: bool = False) -> bool:
    from opsdraft.settings import load_settings

    data_dir = Path(".opsdraft") / "demo"
    if data_dir.exists() and not keep:
        shutil.rmtree(data_dir)
    fake = FakeSlack(token="xoxb-opsdraft-demo").start()
    overrides = dict(data_dir=data_dir, database_url="", kafka_bootstrap_servers="", slack_api_url=fake.base_url,
                     slack_bot_token="xoxb-opsdraft-demo", slack_signing_secret="demo-signing-secret",
                     slack_approvers=APPROVER, http_host="127.0.0.1", http_port=free_port(),
                     incident_quiet_period_s=2, slack_channel_per_incident=True,
                     # In production an approved reply greets the customer by name (restored as it is published);
                     # the demo keeps it off so that nothing it prints or stores holds the sample's personal data.
                     redaction_restore_names=False)
    if model:
        overrides["model"] = model
    settings = load_settings(**overrides)
    log_capture = io.StringIO()
    _demo_logging(settings, log_capture)
    try:
        return asyncio.run(_demo(console, settings, fake, log_capture))
    finally:
        fake.stop()


def _demo_logging(settings, capture: io.StringIO) -> None:
    from opsdraft.privacy import install_log_redaction

    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    for handler, level in ((logging.StreamHandler(capture), logging.INFO), (logging.StreamHandler(), logging.WARNING)):
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # per-call notes about unmapped NER labels
    for noisy in ("aiokafka", "httpx", "sentence_transformers", "transformers", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_redaction(settings)


async def _demo(console: Console, settings, fake: FakeSlack, log_capture: io.StringIO) -> bool:
    from opsdraft_app.runner import kafka, run_roles, runtime

    started = time.monotonic()
    watcher = SlackWatcher(fake, console)
    console.rule("[bold]opsdraft demo")
    with console.status("starting the embedded Kafka broker, SQLite and Presidio…"):
        async with kafka(settings) as bootstrap, runtime(settings, bootstrap) as rt:
            console.print(f"✓ Kafka (embedded Tansu) at {bootstrap}; database {settings.db_url}; "
                          f"fake Slack at {fake.base_url}; redaction: {rt.redactor.mode}")
            stop = asyncio.Event()
            roles = asyncio.create_task(run_roles(rt, {"consumers", "summarizer", "bot", "http"}, stop))
            try:
                result = await _script(console, settings, rt, fake, watcher, roles)
            finally:
                stop.set()
                await asyncio.gather(roles, return_exceptions=True)
    leaks = _scan_for_pii(settings, fake, log_capture, result, console)
    _summary(console, settings, result, leaks, time.monotonic() - started)
    return not leaks and result["approved_postmortem"] and result["approved_reply"] and not result["reply_markup"]


async def _until(what: str, check, roles: asyncio.Task, watcher: SlackWatcher, timeout: float = 900):
    """Poll `check` (a blocking function) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if roles.done():
            roles.result()
            raise RuntimeError(f"opsdraft stopped while waiting for {what}")
        watcher.flush()
        value = await asyncio.to_thread(check)
        if value:
            watcher.flush()
            return value
        await asyncio.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


TIME_FIELDS = {"startsAt", "endsAt", "timestamp", "created_at", "at"}


def _shift_times(value, delta):
    """Move the sample's timestamps so the incident happened minutes ago, not on the day it was written."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in TIME_FIELDS and isinstance(v, str) and not v.startswith("0001-"):
                v = (datetime.fromisoformat(v.replace("Z", "+00:00")) + delta).isoformat().replace("+00:00", "Z")
            out[k] = _shift_times(v, delta)
        return out
    if isinstance(value, list):
        return [_shift_times(v, delta) for v in value]
    return value


def load_sample() -> list[dict]:
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    first = datetime(2026, 11, 20, 14, 1, 55, tzinfo=UTC)  # the sample's first event
    delta = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20) - first
    return [_shift_times(r, delta) for r in rows]


async def _script(console, settings, rt, fake, watcher, roles) -> dict:
    rows = load_sample()
    db = rt.db

    def q(stmt):
        with db.session() as s:
            return s.scalar(stmt)

    console.rule("1. Alerts fire, logs and tickets arrive")
    for row in (r for r in rows if r["phase"] == "firing"):
        raw = row.get("raw") or json.dumps(row["value"])
        await rt.bus.send(row["topic"], raw.encode())
        console.print(f"  → produced to [bold]{row['topic']}[/bold]: {_describe(row)}")
    await _until("the events to be stored", lambda: q(select(func.count(LogEvent.id))) == 5
                 and q(select(func.count(Ticket.id))) == 2 and q(select(func.count(Alert.id))) == 2, roles, watcher)
    console.print("✓ stored (redacted): 1 incident, 2 alerts, 5 log lines, 2 tickets; 1 malformed alert dead-lettered")

    console.rule("2. Slash commands, signed like Slack's")
    url = f"http://{settings.http_host}:{settings.http_port}/slack/events"
    await _until("the HTTP endpoint", lambda: _port_open(settings.http_port), roles, watcher, 60)
    for text in ("list", "status 1", "bogus"):
        body = slash_command_body("/incident", text, user_id=APPROVER, response_url=fake.response_url(f"cmd-{text}"))
        t0 = time.perf_counter()
        resp = await post_signed(url, settings.slack_signing_secret, body)
        ms = (time.perf_counter() - t0) * 1000
        console.print(f"  /incident {text} → HTTP {resp.status_code} in {ms:.0f} ms {resp.text[:120]!r}")
    answer = await asyncio.to_thread(fake.wait_for, lambda c: c["method"] == "response_url"
                                     and c.get("key") == "cmd-status 1", 30)
    console.print(Panel(Text(answer["args"].get("text", "")), title="ephemeral answer to /incident status 1",
                        title_align="left"))
    await _incident_channel(console, settings, rt, fake, watcher, roles, url)

    console.rule("3. Alerts resolve; the incident closes after its quiet period")
    for row in (r for r in rows if r["phase"] == "resolved"):
        await rt.bus.send(row["topic"], json.dumps(row["value"]).encode())
        console.print(f"  → produced to [bold]{row['topic']}[/bold]: {_describe(row)}")
    await _until("the incident to close", lambda: q(select(Incident.status).where(Incident.id == 1)) == "closed",
                 roles, watcher)

    console.rule("4. Drafts are made and posted for approval")
    with console.status(f"drafting with model '{settings.model}' (a CPU model can take minutes)…"):
        await _until("the postmortem and reply drafts in Slack", lambda: _posted(db) >= 3, roles, watcher)

    console.rule("5. A human approves (signed block_actions, like Slack's)")
    postmortem = await asyncio.to_thread(_draft, db, "postmortem")
    reply = await asyncio.to_thread(_draft, db, "ticket_reply")
    for d in (postmortem, reply):
        msg = fake.message(d.slack_channel, d.slack_ts)
        body = block_action_body(ActionId.draft_approve, str(d.id), APPROVER, d.slack_channel, d.slack_ts, message=msg)
        resp = await post_signed(url, settings.slack_signing_secret, body)
        console.print(f"  clicked Approve on draft #{d.id} ({d.kind}) → HTTP {resp.status_code}")
    await _until("both drafts to be published", lambda: q(select(func.count(Draft.id)).where(
        Draft.id.in_([postmortem.id, reply.id]), Draft.status == "published")) == 2, roles, watcher)
    replies = await read_topic(rt.bus, settings.topics.ticket_replies, 1)
    markup: list[str] = []
    for r in replies:
        console.print(Panel(Text(r["body"]), title=f"produced to ticket-replies for {r['ticket_id']}",
                            title_align="left", border_style="green"))
        # the customer's text is prose alone; which sentence rests on which source travels beside it
        markup += markup_in(r["body"], allow="<PERSON_1>")
        keys = sorted({s["key"] for c in r.get("sources", []) for s in c["sources"]})
        console.print(f"  body: {'clean customer prose' if not markup else f'INTERNAL MARKUP {markup}'}; "
                      f"sources, sent beside it: {', '.join(keys) or 'none (no source answered)'}")
    dead = await read_topic(rt.bus, settings.topics.dead_letters, 1)
    for d in dead:
        console.print(f"  dead letter from {d['source']['topic']}@{d['source']['offset']}: {d['reason']}")
    return {"approved_postmortem": postmortem.id, "approved_reply": reply.id, "ticket_replies": replies,
            "reply_markup": markup,
            "dead_letters": dead}


async def _incident_channel(console, settings, rt, fake, watcher, roles, url) -> None:
    """The incident's own channel: a responder says what they did (with personal data, redacted on capture) and
    pins it with 📌, so the postmortem shows that human action at the time it was said."""
    from opsdraft.models import IncidentChannel, TimelineEntry

    def q(stmt):
        with rt.db.session() as s:
            return s.scalar(stmt)

    console.rule("2b. The incident's own Slack channel: what people say and pin goes on its timeline")
    row = await _until("the incident's channel", lambda: q(select(IncidentChannel)), roles, watcher, 60)
    console.print(f"  channel #{row.name} ({row.channel_id}) created, summary pinned, announced in the incidents "
                  f"channel")
    said, event = fake.say(row.channel_id, "U0DEMORESPONDER", "Rolling back checkout to v2.3.0 now; Maria "
                           "Gonzalez (maria.gonzalez@example.com) confirmed the failed payments")
    for body in (event, fake.react(row.channel_id, said["ts"], APPROVER, "pushpin")):
        resp = await post_signed(url, settings.slack_signing_secret, body)
        console.print(f"  event {json.loads(body)['event']['type']} → HTTP {resp.status_code}")
    entry = await _until("the pinned message on the timeline", lambda: q(select(TimelineEntry).where(
        TimelineEntry.kind == "pinned")), roles, watcher, 60)
    console.print(Panel(Text(f"{entry.at:%H:%M:%S} [{entry.source_ref}] {entry.text}"),
                        title="captured (redacted) as a key timeline entry", title_align="left"))


def _describe(row: dict) -> str:
    v = row.get("value")
    if v is None:
        return "a malformed message (truncated JSON)"
    if row["topic"] == "alerts":
        a = v["alerts"][0]
        return f"Alertmanager {a['status']} {a['labels']['alertname']} {a['labels']['instance']}"
    if row["topic"] == "logs":
        return f"{v['level']} log from {v['service']}"
    if row["topic"] == "changes":
        return f"{v['kind']} of {v['service']} {v['version']} by {v['actor']}"
    return f"ticket {v['id']}: {v['subject']}"


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


def _posted(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Draft.id)).where(Draft.slack_ts.is_not(None)))


def _draft(db, kind: str) -> Draft:
    with db.session() as s:
        return s.scalar(select(Draft).where(Draft.kind == kind, Draft.slack_ts.is_not(None)).order_by(Draft.id))


def _scan_for_pii(settings, fake: FakeSlack, log_capture: io.StringIO, result: dict, console: Console) -> list[str]:
    """Search every store and output of the run for the sample's personal data and secrets."""
    places: dict[str, bytes] = {}
    if console.record:
        places["demo output"] = console.export_text(clear=False).encode()
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes()
    places["slack calls"] = json.dumps(fake.calls, default=str).encode()
    places["log output"] = log_capture.getvalue().encode()
    places["ticket-replies and dead-letters"] = json.dumps(result, default=str).encode()
    return [f"{needle!r} in {where}" for where, data in places.items() for needle in SAMPLE_SECRETS
            if needle.encode() in data]


def _summary(console: Console, settings, result: dict, leaks: list[str], seconds: float) -> None:
    console.rule("Summary")
    table = Table(show_header=False)
    table.add_row("approved postmortem", f"draft #{result['approved_postmortem']} (published to Slack)")
    table.add_row("approved ticket reply", f"draft #{result['approved_reply']} → ticket-replies")
    table.add_row("dead letters", str(len(result["dead_letters"])))
    table.add_row("PII / secrets found in database, index, Slack, logs, topics",
                  "[green]none[/green]" if not leaks else f"[red]{len(leaks)}: {'; '.join(leaks)}[/red]")
    table.add_row("time", f"{seconds:.0f} s")
    table.add_row("inspect", f"OPSDRAFT_DATA_DIR={settings.data_dir} opsdraft drafts list")
    console.print(table)
