"""The Slack paths through every role over a real broker: /incident declare, close, the postmortem draft
posted for approval, Regenerate with instructions, Approve. Signed HTTP requests against `opsdraft run`'s
roles in-process; the fake Slack Web API answers the bot."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opsdraft.broker import free_port
from opsdraft.models import AuditLog, Draft, Incident
from opsdraft_app.testing.slackfake import FakeSlack
from opsdraft_app.testing.slacksign import block_action_body, post_signed, slash_command_body, view_submission_body
from tests.conftest import all_roles_running, runtime_on_broker, wait_until
from tests.test_end_to_end import _listening

pytestmark = [pytest.mark.broker, pytest.mark.slow]
LEAD = "U0LEAD"


async def test_declare_close_regenerate_approve(kafka_bootstrap, db_url, database, make_settings):
    with FakeSlack(token="xoxb-pipe") as fake:
        settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, database_url=db_url, model="none",
                                 slack_api_url=fake.base_url, slack_bot_token="xoxb-pipe",
                                 slack_signing_secret="pipe-secret", slack_approvers_postmortem=LEAD,
                                 http_port=free_port())
        async with runtime_on_broker(settings, kafka_bootstrap) as rt:
            async with all_roles_running(rt):
                await _drive(rt, settings, fake)


async def _drive(rt, settings, fake):
    url = f"http://127.0.0.1:{settings.http_port}/slack/events"
    await wait_until(lambda: _listening(settings.http_port), "the HTTP server")

    async def send(body):
        r = await post_signed(url, settings.slack_signing_secret, body)
        assert r.status_code == 200, r.text
        return r

    await send(slash_command_body("/incident", "declare Checkout payments failing sev1", user_id=LEAD,
                                  response_url=fake.response_url("declare")))
    await fake.await_for(lambda c: c.get("key") == "declare", timeout=30)

    def declared():
        with rt.db.session() as s:
            return s.scalar(select(Incident).where(Incident.group_key.like("declared:%")))

    inc = await wait_until(declared, "the declared incident")
    assert (inc.title, inc.severity, inc.status) == ("Checkout payments failing", "sev1", "open")
    await fake.await_for(lambda c: c["method"] == "chat.postMessage" and "Incident opened" in c["args"]["text"]
                         and f"#{inc.id}" in c["args"]["text"], timeout=60)

    await send(slash_command_body("/incident", f"close {inc.id} rolled back the deploy", user_id=LEAD,
                                  response_url=fake.response_url("close")))

    def draft(version):
        with rt.db.session() as s:
            return s.scalar(select(Draft).where(Draft.kind == "postmortem", Draft.subject_id == inc.id,
                                                Draft.version == version, Draft.slack_ts.is_not(None)))

    v1 = await wait_until(lambda: draft(1), "the postmortem draft in Slack")
    assert v1.slack_channel == settings.slack_incident_channel

    def click(d, action, user=LEAD):
        return block_action_body(action, str(d.id), user, d.slack_channel, d.slack_ts,
                                 message=fake.message(d.slack_channel, d.slack_ts))

    await send(click(v1, "draft_regenerate"))
    await fake.await_for(lambda c: c["method"] == "views.open", timeout=30)
    await send(view_submission_body("draft_regenerate_submit", str(v1.id), {"instructions": {
        "instructions_input": {"type": "plain_text_input", "value": "Lead with the customer impact."}}}, LEAD))
    v2 = await wait_until(lambda: draft(2), "the regenerated postmortem in Slack")
    assert v2.parent_id == v1.id and any("Lead with the customer impact" in n for n in v2.notes)

    await send(click(v2, "draft_approve", user="U0SOMEONE"))  # not a postmortem approver
    await fake.await_for(lambda c: c["method"] == "chat.postEphemeral" and c["args"]["user"] == "U0SOMEONE")
    await send(click(v2, "draft_approve"))

    def statuses():
        with rt.db.session() as s:
            return s.scalars(select(Draft.status).where(Draft.id.in_([v1.id, v2.id])).order_by(Draft.id)).all()

    await wait_until(lambda: statuses() == ["superseded", "published"], "v1 superseded and v2 published")
    await fake.await_for(lambda c: c["method"] == "chat.postMessage" and "(final)" in c["args"].get("text", ""))
    with rt.db.session() as s:
        actions = set(s.scalars(select(AuditLog.action)))
    assert {"draft.regenerate_requested", "draft.approved", "draft.published"} <= actions
