"""Text from inputs reaches Slack as text, never as markup: broadcast mentions, user mentions, disguised links,
bidi overrides and ANSI escapes in an alert name and summary, a log line and a ticket are driven through the
consumers, the summarizer (no model) and the bot over a real broker, and every call the fake Slack received is
searched. Our own markup (the approver's mention, bold) still works."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from opsdraft.broker import free_port
from opsdraft.models import Draft, Incident
from opsdraft.slacktext import escape, plain, strip_controls
from opsdraft_app.testing.slackfake import FakeSlack
from opsdraft_app.testing.slacksign import post_signed, slash_command_body
from redaction import RedactingLogFilter
from tests.conftest import all_roles_running, runtime_on_broker, wait_until
from tests.test_end_to_end import _listening

LEAD = "U0LEAD"
# Each case as it may arrive in any input field.
MARKUP = "<!channel> <!here> <!everyone> @channel @here @everyone <@U0EVIL> <http://evil.example|the fix> " \
         "gnp.\u202eexe \x1b[31mred\x1b[0m"
RAW = ["<!channel>", "<!here>", "<!everyone>", "@channel", "@here", "@everyone", "<@U0EVIL>", "<http://evil",
       "\u202e", "\x1b"]


def test_escape_neutralises_each_case():
    out = escape(MARKUP + " a & b")
    assert not [r for r in RAW if r in out], out
    assert out.startswith("&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; \uff20channel \uff20here \uff20everyone")
    assert "&lt;@U0EVIL&gt; &lt;http://evil.example|the fix&gt; gnp.exe red a &amp; b" in out
    assert escape("ops@here.example") == "ops@here.example"  # an address is no broadcast
    for bidi in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c":
        assert escape(f"a{bidi}b") == plain(f"a{bidi}b") == "ab"


def test_strip_controls_keeps_lines_and_tabs():
    assert strip_controls("a\x1b[1;31mb\x1b]0;title\x07c\r\nd\te\x00\x07\x9b2Jf\x85") == "abc\nd\tef"


def test_log_filter_decodes_url_encoding_and_strips_controls(redactor):
    """Bolt logs a stale request's whole form body: the email, card and password in it are URL-encoded."""
    body = ("token=x&command=%2Fincident&text=close+5+card+4111+1111+1111+1111+password%3DPw-s3cret9Q"
            "&user_name=ada.lovelace%40example.com&extra=%2540twice%40example.org \x1b[31m")
    record = logging.LogRecord("slack_bolt", logging.WARNING, __file__, 1, "Invalid signature; body: %s",
                               (body,), None)
    RedactingLogFilter(redactor).filter(record)
    out = record.getMessage()
    assert "lovelace" not in out and "4111" not in out and "Pw-s3cret9Q" not in out and "\x1b" not in out, out
    assert "twice@example.org" not in out and "<EMAIL_" in out and "/incident" in out


def _strings(value) -> list[str]:
    """Every string in a recorded call, JSON-encoded ones (blocks as a form field) opened too."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _strings(json.loads(value))
        except ValueError:
            pass
    return [value] if isinstance(value, str) else []


@pytest.mark.broker
@pytest.mark.slow
async def test_markup_from_inputs_reaches_slack_escaped(kafka_bootstrap, db_url, database, make_settings):
    with FakeSlack(token="xoxb-esc") as fake:
        settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, database_url=db_url, model="none",
                                 slack_api_url=fake.base_url, slack_bot_token="xoxb-esc",
                                 slack_signing_secret="esc-secret", slack_approvers=LEAD, http_port=free_port())
        async with runtime_on_broker(settings, kafka_bootstrap) as rt:
            async with all_roles_running(rt):
                await _drive(rt, settings, fake)
    texts = [s for call in fake.calls for s in _strings(call.get("args", {}))]
    leaked = sorted({r for r in RAW for t in texts if r in t})
    assert not leaked, f"raw markup reached Slack: {leaked}"
    everything = "\n".join(texts)
    # Each field did reach Slack (so the check above could fail), escaped, and our own markup survived. The
    # alert's summary (BRAVO) is shown by no deterministic path: it is covered by the search for raw markup.
    for marker in ("ALPHA", "CHARLIE", "DELTA"):
        assert f"{marker} &lt;!channel&gt;" in everything, f"{marker} never reached Slack"
    assert "&lt;http://evil.example|the fix&gt;" in everything and "\uff20here" in everything
    assert "*#" in everything  # our bold incident number in the "Incident opened" post


async def _drive(rt, settings, fake):
    t = settings.topics
    url = f"http://127.0.0.1:{settings.http_port}/slack/events"
    await wait_until(lambda: _listening(settings.http_port), "the HTTP server")

    def alert(status, ends="0001-01-01T00:00:00Z"):
        return {"version": "4", "status": status, "groupKey": "g", "alerts": [{
            "status": status, "labels": {"alertname": f"ALPHA {MARKUP}", "service": "checkout",
                                         "severity": "critical"},
            "annotations": {"summary": f"BRAVO {MARKUP}"}, "startsAt": "2026-11-20T14:02:10Z", "endsAt": ends,
            "fingerprint": "esc-fp"}]}

    await rt.bus.send(t.alerts, alert("firing"))

    def incident():
        with rt.db.session() as s:
            return s.scalar(select(Incident).where(Incident.service == "checkout"))

    inc = await wait_until(incident, "the incident")
    await fake.await_for(lambda c: c["method"] == "chat.postMessage" and "Incident opened" in c["args"]["text"],
                         timeout=60)
    await rt.bus.send(t.logs, {"timestamp": "2026-11-20T14:03:00Z", "service": "checkout", "level": "ERROR",
                               "message": f"CHARLIE {MARKUP}"})
    await rt.bus.send(t.tickets, {"id": "T-ESC", "subject": f"DELTA {MARKUP}", "body": f"DELTA {MARKUP}",
                                  "requester": "someone", "created_at": "2026-11-20T14:05:00Z"})
    r = await post_signed(url, settings.slack_signing_secret, slash_command_body(
        "/incident", f"status {inc.id}", user_id=LEAD, response_url=fake.response_url("status")))
    assert r.status_code == 200
    await fake.await_for(lambda c: c.get("key") == "status", timeout=30)

    def posted(kind):
        with rt.db.session() as s:
            return s.scalar(select(Draft).where(Draft.kind == kind, Draft.slack_ts.is_not(None)))

    await wait_until(lambda: posted("ticket_reply"), "the ticket reply draft in Slack")
    r = await post_signed(url, settings.slack_signing_secret, slash_command_body(
        "/incident", f"timeline {inc.id}", user_id=LEAD, response_url=fake.response_url("timeline")))
    assert r.status_code == 200
    await wait_until(lambda: posted("timeline"), "the timeline draft in Slack")
    await rt.bus.send(t.alerts, alert("resolved", ends="2026-11-20T14:20:00Z"))
    await wait_until(lambda: posted("postmortem"), "the postmortem draft in Slack")


def test_cli_output_has_no_control_characters(monkeypatch, tmp_path):
    """Stored text came from inputs: `opsdraft drafts show`/`list` must not drive the reader's terminal."""
    from typer.testing import CliRunner

    from opsdraft.db import Database
    from opsdraft.models import Draft
    from opsdraft.settings import load_settings
    from opsdraft_app.cli import app

    monkeypatch.setenv("OPSDRAFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPSDRAFT_REDACTION_MODE", "patterns")
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    with Database(load_settings().db_url).session() as s:
        s.add(Draft(request_id="r", kind="postmortem", subject_type="incident", subject_id=1,
                    title="PM \x1b[31mred[/red] \u202eone", body="body \x1b]0;pwned\x07text\r\nnext \x1b[2J",
                    sources=["alert:1"], notes=["note \x1b[1mbold"], model="none"))
    shown, listed = runner.invoke(app, ["drafts", "show", "1"]), runner.invoke(app, ["drafts", "list"])
    assert shown.exit_code == listed.exit_code == 0
    for out in (shown.output, listed.output):
        assert not [c for c in out if c in "\x1b\x07\r\u202e"], repr(out)
    assert "body text\nnext" in shown.output and "note bold" in shown.output
    assert "red[/red]" in listed.output  # a title's brackets are text, not rich markup
