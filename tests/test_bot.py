"""The Slack bot through its HTTP endpoint, with requests signed like Slack's, against the fake Slack."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest
from slack_sdk.models.blocks import Block

from bot.blocks import chunk_text, draft_blocks
from bot.worker import Poster
from opsdraft.models import Approval, AuditLog, Draft, Incident, Outbox, Ticket
from opsdraft.runtime import Runtime
from opsdraft_app.http import build_http
from opsdraft_app.testing.slackfake import validate_blocks
from opsdraft_app.testing.slacksign import block_action_body, post_signed, slash_command_body, view_submission_body
from tests.conftest import until

APPROVER, OTHER = "U0APPROVER", "U0STRANGER"
SECRET = "test-signing-secret"


@pytest.fixture
def env(database, make_settings, redactor, fake):
    yield from bot_env(database, make_settings, redactor, fake)


def bot_env(database, make_settings, redactor, fake, **overrides):
    """The bot's HTTP app over a database holding an incident, a ticket and one posted draft for each."""
    settings = make_settings(**{"slack_api_url": fake.base_url, "slack_bot_token": "xoxb-test",
                                "slack_signing_secret": SECRET, "slack_approvers": APPROVER, **overrides})
    rt = Runtime(settings=settings, db=database, bus=None, redactor=redactor)
    from bot.app import build_app

    api = build_http(settings, None, build_app(rt))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://bot")
    with database.session() as s:
        inc = Incident(title="HighErrorRate on checkout", group_key="checkout/HighErrorRate", service="checkout",
                       severity="sev2", opened_at=datetime(2026, 11, 20, 14, tzinfo=UTC))
        ticket = Ticket(external_id="T-1", subject="Refund", body="charged twice", requester="<PERSON_1>",
                        created_at=datetime(2026, 11, 20, 14, tzinfo=UTC))
        s.add_all([inc, ticket])
        s.flush()
        drafts = [Draft(request_id=f"r{i}", kind=k, subject_type=t, subject_id=sid, title=f"{k} title",
                        body=f"## Summary\n{k} body", sources=["runbook:x.md#a"], notes=[], model="none")
                  for i, (k, t, sid) in enumerate([("postmortem", "incident", inc.id), ("ticket_reply", "ticket",
                                                                                          ticket.id)])]
        s.add_all(drafts)
    poster = Poster(rt)
    with database.session() as s:  # what the bot's consumer does when a draft is ready
        for d in s.query(Draft):
            poster.post_draft(s, type("R", (), {"draft_id": d.id})())
    yield settings, database, client, fake


async def signed(client, body, secret=SECRET, **kw):
    return await post_signed("http://bot/slack/events", secret, body, client=client, **kw)


def draft_of(db, kind) -> Draft:
    with db.session() as s:
        return s.query(Draft).filter_by(kind=kind).order_by(Draft.id.desc()).first()


async def click(client, fake, d: Draft, action: str, user=APPROVER):
    body = block_action_body(action, str(d.id), user, d.slack_channel, d.slack_ts,
                             message=fake.message(d.slack_channel, d.slack_ts))
    return await signed(client, body)


async def test_drafts_are_posted_with_valid_blocks(env):
    settings, db, client, fake = env
    posted = fake.calls_to("chat.postMessage")
    assert {c["args"]["channel"] for c in posted} == {"C0INCIDENTS", "C0SUPPORT"}
    for c in posted:
        assert [b["type"] for b in c["args"]["blocks"]][-1] == "actions"
        for b in c["args"]["blocks"]:
            assert Block.parse(b) is not None


async def test_slash_commands(env):
    settings, db, client, fake = env
    body = slash_command_body("/incident", "bogus", user_id=APPROVER, response_url=fake.response_url("a"))
    r = await signed(client, body)
    assert r.status_code == 200 and "Usage" in r.text  # wrong usage: ephemeral answer in the ack
    r = await signed(client, slash_command_body("/incident", "status", response_url=fake.response_url("b")))
    assert "needs an incident number" in r.text
    for key, text in [("list", "list"), ("status", "status 1"), ("missing", "status 999")]:
        r = await signed(client, slash_command_body("/incident", text, response_url=fake.response_url(key)))
        assert r.status_code == 200
    answers = {k: (await fake.await_for(lambda c, k=k: c["method"] == "response_url" and c.get("key") == k))
               for k in ("list", "status", "missing")}
    assert "HighErrorRate on checkout" in answers["list"]["args"]["text"]
    assert "sev2" in answers["status"]["args"]["text"]
    assert "does not exist" in answers["missing"]["args"]["text"]
    r = await signed(client, slash_command_body("/incident", "close 1 rolled back",
                                                 response_url=fake.response_url("close")))
    await fake.await_for(lambda c: c.get("key") == "close")
    r = await signed(client, slash_command_body("/ticket", "suggest T-1", response_url=fake.response_url("t")))
    await fake.await_for(lambda c: c.get("key") == "t")
    with db.session() as s:
        topics = sorted(o.topic for o in s.query(Outbox))
    assert topics == sorted([settings.topics.incident_commands, settings.topics.draft_requests])
    r = await signed(client, slash_command_body("/opsdraft", "help"))
    assert "/incident list" in r.text


async def test_bad_signature_and_old_timestamp_rejected(env):
    settings, db, client, fake = env
    body = slash_command_body("/incident", "list")
    assert (await signed(client, body, secret="wrong")).status_code == 401
    old = int(time.time()) - 6 * 60
    assert (await signed(client, body, timestamp=old)).status_code == 401
    assert (await signed(client, body, secret="wrong", retry_num=1)).status_code == 401


async def test_slack_retry_does_not_duplicate_work(env):
    settings, db, client, fake = env
    body = slash_command_body("/ticket", "suggest T-1", response_url=fake.response_url("once"))
    await signed(client, body)
    r = await signed(client, body, retry_num=1)
    assert r.status_code == 200
    await fake.await_for(lambda c: c.get("key") == "once")
    await asyncio.sleep(0.3)
    with db.session() as s:
        assert s.query(Outbox).count() == 1


async def test_approve_ticket_reply_publishes_once_even_with_two_clicks(env):
    settings, db, client, fake = env
    d = draft_of(db, "ticket_reply")
    r1, r2 = await asyncio.gather(click(client, fake, d, "draft_approve"), click(client, fake, d, "draft_approve"))
    assert r1.status_code == r2.status_code == 200
    await until(lambda: draft_of(db, "ticket_reply").status == "published")
    await asyncio.sleep(0.3)
    with db.session() as s:
        replies = s.query(Outbox).filter_by(topic=settings.topics.ticket_replies).all()
        assert len(replies) == 1 and replies[0].payload["ticket_id"] == "T-1"
        assert s.query(Approval).filter_by(draft_id=d.id, decision="approved").count() == 1
        assert {a.action for a in s.query(AuditLog)} >= {"draft.approved", "draft.published"}
    msg = fake.message(d.slack_channel, d.slack_ts)
    assert "Published" in str(msg["blocks"]) and "actions" not in [b["type"] for b in msg["blocks"]]


async def test_approve_postmortem_posts_final(env):
    settings, db, client, fake = env
    d = draft_of(db, "postmortem")
    await click(client, fake, d, "draft_approve")
    await until(lambda: draft_of(db, "postmortem").status == "published")
    await fake.await_for(lambda c: c["method"] == "chat.postMessage" and "(final)" in c["args"].get("text", ""))


async def test_an_approved_postmortem_whose_post_failed_is_posted_later(env):
    """Slack refuses the final post at the click: the draft stays approved (the approver is told), and the bot's
    loop posts it once Slack answers again."""
    from bot.flows import publish_approved

    settings, db, client, fake = env
    d = draft_of(db, "postmortem")
    fake.fail_next("chat.postMessage", "internal_error")
    await click(client, fake, d, "draft_approve")
    told = await fake.await_for(lambda c: c["method"] == "chat.postEphemeral")
    assert "posting failed" in told["args"]["text"]
    assert draft_of(db, "postmortem").status == "approved"
    stop = asyncio.Event()
    rt = Runtime(settings=settings, db=db, bus=None, redactor=None)
    task = asyncio.create_task(publish_approved(rt, stop, every=0.2, grace_s=0))
    try:
        await until(lambda: draft_of(db, "postmortem").status == "published")
    finally:
        stop.set()
        await task
    finals = [c for c in fake.calls_to("chat.postMessage") if "(final)" in c["args"].get("text", "")]
    assert len(finals) == 2 and not finals[0]["response"]["ok"] and finals[1]["response"]["ok"]


async def test_non_approver_is_refused(env):
    settings, db, client, fake = env
    d = draft_of(db, "postmortem")
    await click(client, fake, d, "draft_approve", user=OTHER)
    call = await fake.await_for(lambda c: c["method"] == "chat.postEphemeral")
    assert call["args"]["user"] == OTHER and "approvers" in call["args"]["text"]
    assert draft_of(db, "postmortem").status == "pending"


async def test_edit_makes_a_new_version(env):
    settings, db, client, fake = env
    d = draft_of(db, "postmortem")
    await click(client, fake, d, "draft_edit")
    opened = await fake.await_for(lambda c: c["method"] == "views.open")
    view = opened["args"]["view"]
    assert view["callback_id"] == "draft_edit_submit" and view["private_metadata"] == str(d.id)
    empty = view_submission_body("draft_edit_submit", str(d.id), {"body": {"body_input": {"type": "plain_text_input",
                                                                                           "value": "  "}}}, APPROVER)
    r = await signed(client, empty)
    assert r.json()["response_action"] == "errors"
    text = "## Summary\nEdited by hand; customer jane.roe@example.com affected."
    ok = view_submission_body("draft_edit_submit", str(d.id),
                              {"body": {"body_input": {"type": "plain_text_input", "value": text}}}, APPROVER)
    assert (await signed(client, ok)).status_code == 200
    await until(lambda: draft_of(db, "postmortem").version == 2)
    new, old = draft_of(db, "postmortem"), None
    with db.session() as s:
        old = s.get(Draft, d.id)
        ready = s.query(Outbox).filter_by(topic=settings.topics.drafts_ready).one()
    assert old.status == "superseded" and new.status == "pending" and new.parent_id == d.id
    assert "jane.roe@example.com" not in new.body and "<EMAIL_1>" in new.body  # edits are redacted too
    assert ready.payload["draft_id"] == new.id


async def test_reject_records_reason(env):
    settings, db, client, fake = env
    d = draft_of(db, "ticket_reply")
    await click(client, fake, d, "draft_reject")
    await fake.await_for(lambda c: c["method"] == "views.open")
    body = view_submission_body("draft_reject_submit", str(d.id), {
        "reason": {"reason_input": {"type": "plain_text_input", "value": "cites the wrong runbook"}}}, APPROVER)
    assert (await signed(client, body)).status_code == 200
    await until(lambda: draft_of(db, "ticket_reply").status == "rejected")
    with db.session() as s:
        a = s.query(Approval).filter_by(draft_id=d.id).one()
    assert (a.decision, a.reason) == ("rejected", "cites the wrong runbook")
    await click(client, fake, d, "draft_approve")  # a rejected draft cannot be approved afterwards
    call = await fake.await_for(lambda c: c["method"] == "chat.postEphemeral")
    assert "already rejected" in call["args"]["text"]


def test_long_drafts_stay_within_block_kit_limits():
    body = "\n".join(f"line {i} " + "x" * 200 for i in range(2000))
    chunks = chunk_text(body)
    assert all(len(c) <= 3000 for c in chunks) and "".join(chunks) == body
    d = Draft(id=7, kind="postmortem", subject_type="incident", subject_id=1, version=1, status="pending",
              title="t", body=body, sources=["a"] * 50, notes=["n"], model="none")
    blocks = draft_blocks(d)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= 50 and "opsdraft drafts show 7" in str(blocks)
