"""Incidents in Slack: one incident's whole life in its own channel, over signed requests and events against the
fake Slack and every role of `opsdraft run` on a real broker (channel created, lead set, messages captured and
redacted, a pinned entry at its posting time, a status update approved and posted, closed, the postmortem with
human entries posted in the channel, the channel archived); and the parts on their own."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.channels import channel_name, slug
from bot.commands import UsageError
from bot.conversation import slack_time
from bot.followups import action_items
from bot.livecommands import parse_live
from opsdraft.broker import free_port
from opsdraft.models import Draft, Incident, IncidentChannel, Outbox, TimelineEntry
from opsdraft_app.testing.slackfake import FakeSlack
from opsdraft_app.testing.slacksign import block_action_body, post_signed, slash_command_body
from tests.conftest import all_roles_running, runtime_on_broker, wait_until
from tests.test_end_to_end import _listening

LEAD, ALICE, ONCALL = "U0LEAD", "U0ALICE", "U0ONCALL"
EMAIL = "jane.roe@example.com"


def test_channel_names_keep_slacks_rules():
    inc = Incident(id=42, title="HighErrorRate: Checkout 5xx > 2% (EU)!", service="checkout")
    assert channel_name("inc-{id}-{service}-{title}", inc) == "inc-42-checkout-higherrorrate-checkout-5xx-2-eu"
    long = Incident(id=7, title="x" * 300, service="Payments API")
    name = channel_name("inc-{id}-{service}-{title}", long, attempt=2)
    assert len(name) == 80 and name.startswith("inc-7-payments-api-") and name.endswith("-3")
    assert slug("--Ünïcode & spaces__") == "n-code-spaces"


def test_fake_slack_enforces_channel_rules(fake):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    c = WebClient(token="xoxb-test", base_url=fake.base_url)

    def error(fn, **kw):
        with pytest.raises(SlackApiError) as exc:
            fn(**kw)
        return exc.value.response["error"]

    assert error(c.conversations_create, name="Inc 1") == "invalid_name_specials"
    assert error(c.conversations_create, name="x" * 81) == "invalid_name_maxlength"
    assert error(c.conversations_create, name="--") == "invalid_name_punctuation"
    cid = c.conversations_create(name="inc-1")["channel"]["id"]
    assert error(c.conversations_create, name="inc-1") == "name_taken"
    c.conversations_invite(channel=cid, users=LEAD)
    assert error(c.conversations_invite, channel=cid, users=LEAD) == "already_in_channel"
    fake.add_channel("C0OTHERS", "others", members=[LEAD])
    assert error(c.chat_postMessage, channel="C0OTHERS", text="hi") == "not_in_channel"
    assert error(c.conversations_invite, channel="C0OTHERS", users=ALICE) == "not_in_channel"
    ts = c.chat_postMessage(channel=cid, text="summary")["ts"]
    c.pins_add(channel=cid, timestamp=ts)
    assert error(c.pins_add, channel=cid, timestamp=ts) == "already_pinned"
    c.conversations_archive(channel=cid)
    assert error(c.chat_postMessage, channel=cid, text="late") == "is_archived"
    assert error(c.conversations_archive, channel=cid) == "already_archived"
    assert error(c.conversations_create, name="inc-1") == "name_taken"  # archived channels keep their names
    body = json.loads(fake.envelope({"type": "message", "channel": cid, "user": LEAD, "text": "x", "ts": "1.1"}))
    assert body["type"] == "event_callback" and body["event_id"].startswith("Ev") and body["event"]["user"] == LEAD


def test_live_commands_parse():
    roles = ["comms", "scribe"]
    assert parse_live("lead <@U0ALICE|alice>", roles).args == (ALICE,)
    assert parse_live("role 12 comms <@U0ALICE>", roles).incident_id == 12
    assert parse_live("status 12", roles) is None  # the existing `/incident status <id>`
    assert parse_live("status identified", roles).args == ("identified",)
    assert parse_live("note 3 rolled back to v41", roles).args == ("rolled back to v41",)
    assert parse_live("list", roles) is None
    for bad in ("lead alice", "role pilot <@U0ALICE>", "severity sev9", "status fixed", "note", "update 1 now"):
        with pytest.raises(UsageError):
            parse_live(bad, roles)


def test_action_items_from_a_postmortem():
    body = ("## Summary\n\nx\n\n## Action items\n\n| Action | Owner | Due |\n| --- | --- | --- |\n"
            "| Add a canary stage | <@U0ALICE> | 2026-12-01 |\n| Tune the alert | | soon |\n"
            "\n## Lessons learned\n\n- y\n")
    assert action_items(body) == [("Add a canary stage", "<@U0ALICE>", "2026-12-01"), ("Tune the alert", "", "")]
    assert action_items("## Action items\n- one\n2. two\n") == [("one", "", ""), ("two", "", "")]
    assert action_items("no section") == []


@pytest.mark.broker
@pytest.mark.slow
async def test_an_incident_lives_in_its_own_channel(kafka_bootstrap, db_url, database, make_settings):
    with FakeSlack(token="xoxb-live") as fake:
        fake.add_channel("C0STAKE", "stakeholders")
        settings = make_settings(
            kafka_bootstrap_servers=kafka_bootstrap, database_url=db_url, model="none", slack_api_url=fake.base_url,
            slack_bot_token="xoxb-live", slack_signing_secret="live-secret", slack_approvers_postmortem=LEAD,
            http_port=free_port(), slack_channel_per_incident=True, slack_incident_responders=ONCALL,
            slack_stakeholder_channel="C0STAKE")
        async with runtime_on_broker(settings, kafka_bootstrap) as rt:
            async with all_roles_running(rt):
                await _live(rt, settings, fake)


async def _live(rt, settings, fake):
    url = f"http://127.0.0.1:{settings.http_port}/slack/events"
    await wait_until(lambda: _listening(settings.http_port), "the HTTP server")

    async def send(body, **kw):
        r = await post_signed(url, settings.slack_signing_secret, body, **kw)
        assert r.status_code == 200, r.text
        return r

    def db(fn):
        with rt.db.session() as s:
            return fn(s)

    verify = await send(fake.url_verification("ch-123"))
    assert "ch-123" in verify.text

    await send(slash_command_body("/incident", "declare Checkout payments failing sev1", user_id=LEAD,
                                  response_url=fake.response_url("declare")))
    row = await wait_until(lambda: db(lambda s: s.scalar(select(IncidentChannel))), "the incident's channel")
    inc_id, channel = row.incident_id, row.channel_id
    assert row.name == f"inc-{inc_id}-declared-checkout-payments-failing" and row.lead == LEAD
    assert set(fake.channels[channel]["members"]) >= {LEAD, ONCALL, "U_BOT"}
    await fake.await_for(lambda c: c["method"] == "chat.postMessage" and c["args"]["channel"] == "C0INCIDENTS"
                         and f"<#{channel}>" in c["args"]["text"], timeout=30)
    await wait_until(lambda: fake.message(channel, row.summary_ts or "-") is not None
                     and fake.message(channel, row.summary_ts).get("pinned"), "the pinned summary")

    def command(text, key, user=LEAD):
        return send(slash_command_body("/incident", text, user_id=user, channel_id=channel,
                                       response_url=fake.response_url(key)))

    async def answer(key):
        return (await fake.await_for(lambda c: c.get("key") == key, timeout=30))["args"]["text"]

    await command(f"lead <@{ALICE}|alice>", "lead")
    assert "leads incident" in await answer("lead")
    assert ALICE in fake.channels[channel]["members"]
    await command(f"note Customer {EMAIL} reports failed payments", "note", user=ALICE)
    await answer("note")

    said, event = fake.say(channel, ALICE, f"Rolling back checkout; {EMAIL} confirmed the 500s")
    await send(event)
    await send(event, retry_num=1)  # Slack's retry: answered, never run twice
    decision, decision_event = fake.say(channel, LEAD, "Decision: disable the fraud rule globally until the fix")
    await send(decision_event)
    typo, typo_event = fake.say(channel, ALICE, "wrong channel, sorry")
    await send(typo_event)
    await send(fake.react(channel, decision["ts"], ALICE, "pushpin"))
    await send(fake.delete(channel, typo["ts"]))
    await send(fake.edit(channel, said["ts"], f"Rolled back checkout to v41; {EMAIL} confirmed"))

    def entries():
        return db(lambda s: {e.source_ref: (e.kind, e.text, e.at) for e in s.scalars(
            select(TimelineEntry).where(TimelineEntry.incident_id == inc_id))})

    ref = f"slack:{channel}:{decision['ts']}"
    await wait_until(lambda: entries().get(ref, ("",))[0] == "pinned"
                     and "v41" in entries().get(f"slack:{channel}:{said['ts']}", ("", ""))[1]
                     and f"slack:{channel}:{typo['ts']}" not in entries(), "the captured conversation")
    got = entries()
    assert got[ref][2] == slack_time(decision["ts"])  # the key entry stands at the time it was posted
    captured = [e for r, e in got.items() if r.startswith(f"slack:{channel}:")]
    assert len(captured) == 2 and all(EMAIL not in t for _, t, _ in got.values())
    assert any("<EMAIL_1>" in t for k, t, _ in got.values() if k == "message")
    assert any(k == "lead" and ALICE in t for k, t, _ in got.values())

    await command("status identified", "status")
    await answer("status")
    await command("update", "update")
    assert "Drafting status update" in await answer("update")
    upd = await wait_until(lambda: db(lambda s: s.scalar(select(Draft).where(
        Draft.kind == "status_update", Draft.slack_ts.is_not(None)))), "the status update draft in Slack")
    assert upd.slack_channel == channel and "identified" in upd.body and EMAIL not in upd.body
    await send(block_action_body("draft_approve", str(upd.id), LEAD, channel, upd.slack_ts,
                                 message=fake.message(channel, upd.slack_ts)))
    await fake.await_for(lambda c: c["method"] == "chat.postMessage" and c["args"]["channel"] == "C0STAKE"
                         and "(final)" in c["args"].get("text", ""), timeout=30)
    updates = db(lambda s: [o.payload for o in s.scalars(select(Outbox).where(
        Outbox.topic == settings.topics.incident_updates))])
    assert len(updates) == 1 and updates[0]["state"] == "identified" and updates[0]["approved_by"] == LEAD

    await command(f"close {inc_id} rolled back", "close")
    await answer("close")
    pm = await wait_until(lambda: db(lambda s: s.scalar(select(Draft).where(
        Draft.kind == "postmortem", Draft.subject_id == inc_id, Draft.slack_ts.is_not(None)))), "the postmortem")
    assert pm.slack_channel == channel
    assert "disable the fraud rule" in pm.body and ref in pm.body  # the pinned human decision, cited
    assert EMAIL not in pm.body
    await send(block_action_body("draft_approve", str(pm.id), LEAD, channel, pm.slack_ts,
                                 message=fake.message(channel, pm.slack_ts)))
    await fake.await_for(lambda c: c["method"] == "chat.postMessage" and c["args"]["channel"] == channel
                         and "(final)" in c["args"].get("text", ""), timeout=30)
    await wait_until(lambda: fake.channels[channel].get("is_archived"), "the channel archived")
    await wait_until(lambda: db(lambda s: s.get(IncidentChannel, inc_id).archived_at), "the archive recorded")
    assert "Published" in str(fake.message(channel, pm.slack_ts)["blocks"])  # redrawn before the archive
    follow = db(lambda s: [o.payload for o in s.scalars(select(Outbox).where(
        Outbox.topic == settings.topics.follow_ups))])
    assert follow and all(f["incident_id"] == inc_id and f["postmortem_draft_id"] == pm.id for f in follow)
    await send(slash_command_body("/incident", f"followups {inc_id}", user_id=LEAD,
                                  response_url=fake.response_url("follow")))
    listed = await answer("follow")
    assert all(f["title"][:40] in listed for f in follow)
    assert EMAIL not in json.dumps(fake.calls, default=str)


@pytest.fixture
def live_env(database, make_settings, redactor, fake):
    """The bot's HTTP app in channel mode over the bot_env database, its incident given a channel by the bot's
    consumer as on an `opened` event."""
    from test_bot import bot_env

    from bot.worker import Poster
    from opsdraft.events import IncidentEvent
    from opsdraft.runtime import Runtime

    for settings, db, client, _ in bot_env(database, make_settings, redactor, fake,
                                           slack_channel_per_incident=True, slack_incident_responders="S0ONCALL"):
        fake.add_usergroup("S0ONCALL", [ONCALL, ALICE])
        poster = Poster(Runtime(settings=settings, db=db, bus=None, redactor=redactor))
        with db.session() as s:
            poster.post_incident_event(s, IncidentEvent(event="opened", incident_id=1))
        with db.session() as s:
            row = s.get(IncidentChannel, 1)
        yield settings, db, client, fake, row


async def test_events_outside_incident_channels_and_from_the_bot_are_never_stored(live_env):
    from test_bot import signed

    settings, db, client, fake, row = live_env
    assert set(fake.channels[row.channel_id]["members"]) == {"U_BOT", ONCALL, ALICE}  # the on-call group's members
    _, elsewhere = fake.say("C0INCIDENTS", ALICE, f"unrelated, {EMAIL}")
    bot_post = fake.envelope({"type": "message", "channel": row.channel_id, "bot_id": "B_BOT", "text": "x",
                              "ts": "1700000009.000100"})
    join = fake.envelope({"type": "message", "subtype": "channel_join", "channel": row.channel_id, "user": ALICE,
                          "ts": "1700000009.000200"})
    for body in (elsewhere, bot_post, join, fake.delete(row.channel_id, row.summary_ts)):
        assert (await signed(client, body)).status_code == 200
    # A message posted before anyone captured it (e.g. while opsdraft was down), then pinned: fetched and kept.
    early = fake._new_message(row.channel_id, "Paging payments on-call", None, None)
    early["user"] = ONCALL
    assert (await signed(client, fake.react(row.channel_id, early["ts"], ALICE))).status_code == 200
    await fake.await_for(lambda c: c["method"] == "conversations.history")

    def entries():
        with db.session() as s:
            return [(e.kind, e.text) for e in s.scalars(select(TimelineEntry).where(
                TimelineEntry.kind.in_(["message", "pinned"])))]

    from tests.conftest import until

    assert await until(lambda: entries() == [("pinned", f"<@{ONCALL}>: Paging payments on-call")])
    assert (await signed(client, fake.pin(row.channel_id, early["ts"], ALICE))).status_code == 200  # once only
    await until(lambda: len(fake.calls_to("conversations.history")) == 1)
    assert entries() == [("pinned", f"<@{ONCALL}>: Paging payments on-call")]


async def test_summary_buttons_and_a_regenerated_status_update(live_env):
    from test_bot import click, draft_of, signed

    from bot.worker import Poster
    from opsdraft.runtime import Runtime
    from tests.conftest import until

    settings, db, client, fake, row = live_env
    summary = fake.message(row.channel_id, row.summary_ts)
    assert summary.get("pinned")
    assert (await signed(client, block_action_body("incident_state", "1:identified", ALICE, row.channel_id,
                                                   row.summary_ts, message=summary))).status_code == 200
    await until(lambda: "status *identified*" in str(fake.message(row.channel_id, row.summary_ts)["blocks"]))
    assert (await signed(client, block_action_body("incident_update", "1", ALICE, row.channel_id, row.summary_ts,
                                                   message=summary))).status_code == 200
    await until(lambda: draft_of(db, "status_update") is not None)
    poster = Poster(Runtime(settings=settings, db=db, bus=None, redactor=None))
    with db.session() as s:
        poster.post_draft(s, type("R", (), {"draft_id": draft_of(db, "status_update").id})())
    v1 = draft_of(db, "status_update")
    assert v1.slack_channel == row.channel_id and "identified" in v1.body
    await click(client, fake, v1, "draft_regenerate")
    await fake.await_for(lambda c: c["method"] == "views.open")
    from tests.test_bot_flows import regenerate_body

    assert (await signed(client, regenerate_body(v1.id, "shorter"))).status_code == 200
    await until(lambda: draft_of(db, "status_update").version == 2)
    v2 = draft_of(db, "status_update")
    assert v2.parent_id == v1.id and v2.status == "pending" and any("shorter" in n for n in v2.notes)


def test_thread_mode_opens_no_channel(database, make_settings, redactor, fake):
    from test_bot import bot_env

    from bot.worker import Poster
    from opsdraft.events import IncidentEvent
    from opsdraft.runtime import Runtime

    for settings, db, _, _ in bot_env(database, make_settings, redactor, fake):
        with db.session() as s:
            Poster(Runtime(settings=settings, db=db, bus=None, redactor=redactor)).post_incident_event(
                s, IncidentEvent(event="opened", incident_id=1))
        with db.session() as s:
            assert s.get(IncidentChannel, 1) is None
        assert not fake.calls_to("conversations.create")
        assert fake.calls_to("chat.postMessage")[-1]["args"]["channel"] == "C0INCIDENTS"


def test_channel_settings_are_validated(make_settings):
    from opsdraft.settings import SettingsError

    for bad, name in [(dict(slack_incident_responders="U1,@oncall"), "OPSDRAFT_SLACK_INCIDENT_RESPONDERS"),
                      (dict(slack_stakeholder_channel="#general"), "OPSDRAFT_SLACK_STAKEHOLDER_CHANNEL"),
                      (dict(slack_channel_name="inc-{service}"), "OPSDRAFT_SLACK_CHANNEL_NAME"),
                      (dict(slack_channel_name="inc-{id}-{owner}"), "OPSDRAFT_SLACK_CHANNEL_NAME"),
                      (dict(slack_incident_roles="Comms Lead"), "OPSDRAFT_SLACK_INCIDENT_ROLES")]:
        with pytest.raises(SettingsError, match=name):
            make_settings(**bad)
    s = make_settings()
    assert s.slack_channel_per_incident is False  # off by default: thread mode
    assert s.topics.incident_updates.startswith("incident-updates") and s.topics.follow_ups.startswith("follow-ups")
