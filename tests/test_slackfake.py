"""FakeSlack driven by the real slack_sdk clients, and slacksign proven against a real slack_bolt AsyncApp."""

from __future__ import annotations

import json
import pathlib
import socket
import sys
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

# The project is not installed into .venv and pytest's config has no pythonpath; make `opsdraft` importable.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from opsdraft_app.testing.slackfake import FakeSlack, render_message  # noqa: E402
from opsdraft_app.testing.slacksign import (  # noqa: E402
    block_action_body,
    post_signed,
    sign,
    slash_command_body,
    view_submission_body,
)

# slack_sdk warns when blocks are sent without a top-level text; some tests do that on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")

TOKEN = "xoxb-test"
SECRET = "s3cr3t-signing"
CHAN = "C_INCIDENTS"


@pytest.fixture
def fake():
    f = FakeSlack(token=TOKEN).start()
    yield f
    f.stop()


@pytest.fixture
def aclient(fake):
    return AsyncWebClient(token=TOKEN, base_url=fake.base_url)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(text: str, action_id: str = "approve", value: str = "1") -> dict:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }


async def expect_error(coro, error: str) -> SlackApiError:
    with pytest.raises(SlackApiError) as ei:
        await coro
    assert ei.value.response["error"] == error, ei.value.response.data
    return ei.value


# --------------------------------------------------------------------------------------------- Web API


def test_start_is_idempotent_and_base_url_has_trailing_slash(fake):
    url = fake.base_url
    assert fake.start() is fake
    assert fake.base_url == url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/api/")


async def test_post_update_ephemeral_permalink_round_trip(fake, aclient):
    auth = await aclient.auth_test()
    assert auth["user_id"] == "U_BOT" and auth["team_id"] == "T1"

    blocks = [
        section("*Draft* reply"),
        {"type": "actions", "block_id": "actions", "elements": [button("Approve"), button("Edit", "edit")]},
    ]
    r1 = await aclient.chat_postMessage(channel=CHAN, text="draft", blocks=blocks)
    r2 = await aclient.chat_postMessage(channel=CHAN, text="reply", thread_ts=r1["ts"])
    assert r1["ok"] and r1["channel"] == CHAN and r1["ts"] == "1700000000.000100"
    assert float(r2["ts"]) > float(r1["ts"])
    assert r1["message"]["blocks"] == blocks and r1["message"]["text"] == "draft"
    assert r2["message"]["thread_ts"] == r1["ts"]

    up = await aclient.chat_update(channel=CHAN, ts=r1["ts"], text="approved", blocks=[section("Approved")])
    assert up["ts"] == r1["ts"] and up["text"] == "approved"
    msgs = fake.messages(CHAN)
    assert [m["text"] for m in msgs] == ["approved", "reply"]
    assert msgs[0]["blocks"] == [section("Approved")] and msgs[1]["thread_ts"] == r1["ts"]
    assert fake.messages("C_OTHER") == []

    eph = await aclient.chat_postEphemeral(channel=CHAN, user="U_APPROVER", text="only you")
    assert eph["message_ts"] and fake.ephemerals[-1]["user"] == "U_APPROVER"

    link = await aclient.chat_getPermalink(channel=CHAN, message_ts=r1["ts"])  # a GET with query params
    assert link["permalink"].endswith(f"/archives/{CHAN}/p{r1['ts'].replace('.', '')}")

    posted = fake.calls_to("chat.postMessage")
    assert len(posted) == 2 and posted[0]["args"]["blocks"] == blocks and "token" not in posted[0]["args"]
    assert [c["method"] for c in fake.calls][:2] == ["auth.test", "chat.postMessage"]


async def test_errors_shapes(fake, aclient):
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake.base_url)
    err = await expect_error(bad.chat_postMessage(channel=CHAN, text="x"), "invalid_auth")
    assert err.response.status_code == 200
    await expect_error(AsyncWebClient(base_url=fake.base_url).auth_test(), "invalid_auth")
    await expect_error(aclient.chat_postMessage(channel="#general", text="x"), "channel_not_found")
    await expect_error(aclient.chat_postMessage(channel=CHAN), "no_text")
    await expect_error(aclient.chat_update(channel=CHAN, ts="1.2", text="x"), "message_not_found")
    await expect_error(aclient.chat_postEphemeral(channel=CHAN, user="nobody", text="x"), "user_not_found")
    await expect_error(aclient.api_call("chat.nope"), "unknown_method")
    assert fake.calls_to("chat.postMessage")[0]["response"]["error"] == "invalid_auth"


async def test_invalid_blocks(fake, aclient):
    ok = await aclient.chat_postMessage(channel=CHAN, text="x", blocks=[section("b")] * 50)
    assert ok["ok"]
    err = await expect_error(
        aclient.chat_postMessage(channel=CHAN, text="x", blocks=[section("b")] * 51), "invalid_blocks"
    )
    assert any("no more than 50 items" in e for e in err.response["errors"])
    err = await expect_error(
        aclient.chat_postMessage(channel=CHAN, text="x", blocks=[section("a" * 3001)]), "invalid_blocks"
    )
    assert err.response["errors"] == ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    await aclient.chat_postMessage(channel=CHAN, text="x", blocks=[section("a" * 3000)])
    actions = {"type": "actions", "elements": [button("b" * 76)]}
    err = await expect_error(
        aclient.chat_postMessage(channel=CHAN, text="x", blocks=[actions]), "invalid_blocks"
    )
    assert "/blocks/0/elements/0/text/text" in err.response["errors"][0]
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    await expect_error(aclient.chat_postMessage(channel=CHAN, text="x", blocks=[header]), "invalid_blocks")
    long_id = {"type": "actions", "elements": [button("ok", action_id="a" * 256)]}
    await expect_error(aclient.chat_postMessage(channel=CHAN, text="x", blocks=[long_id]), "invalid_blocks")
    accessory = dict(section("s"), accessory=button("b" * 76))
    await expect_error(aclient.chat_update(channel=CHAN, ts=ok["ts"], blocks=[accessory]), "invalid_blocks")
    assert len(fake.messages()) == 2  # nothing invalid was stored


def test_sync_webclient(fake):
    client = WebClient(token=TOKEN, base_url=fake.base_url)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "INC-7"}}]
    r = client.api_call("chat.postMessage", data={"channel": CHAN, "blocks": json.dumps(blocks)})
    assert r["ok"] and fake.messages()[0]["blocks"] == blocks
    with pytest.raises(SlackApiError) as ei:
        client.api_call(
            "chat.postMessage", data={"channel": CHAN, "blocks": json.dumps([section("x" * 3001)])}
        )
    assert ei.value.response["error"] == "invalid_blocks"
    tokenless = WebClient(base_url=fake.base_url)  # token as a form field instead of a Bearer header
    with pytest.raises(SlackApiError) as ei:
        tokenless.api_call("auth.test", data={"token": "xoxb-nope"})
    assert ei.value.response["error"] == "invalid_auth"
    assert tokenless.api_call("auth.test", data={"token": TOKEN}).get("ok")
    fake.add_channel(CHAN, "incidents")
    fake.add_user("U_APPROVER", "alice", "Alice Approver")
    assert client.conversations_info(channel=CHAN)["channel"]["name"] == "incidents"
    assert client.users_info(user="U_APPROVER")["user"]["real_name"] == "Alice Approver"
    with pytest.raises(SlackApiError):
        client.users_info(user="bogus")


async def test_views(fake, aclient):
    view = {
        "type": "modal",
        "callback_id": "edit_draft",
        "private_metadata": "INC-7",
        "title": {"type": "plain_text", "text": "Edit draft"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "draft",
                "label": {"type": "plain_text", "text": "Reply"},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
            }
        ],
    }
    opened = await aclient.views_open(trigger_id="trig-1", view=view)
    v = opened["view"]
    assert v["id"].startswith("V") and v["callback_id"] == "edit_draft" and v["private_metadata"] == "INC-7"
    assert v["state"] == {"values": {}} and v["blocks"] == view["blocks"]

    await expect_error(aclient.views_open(trigger_id="", view=view), "invalid_arguments")
    await expect_error(aclient.api_call("views.open", json={"view": view}), "invalid_arguments")
    long_title = dict(view, title={"type": "plain_text", "text": "t" * 25})
    err = await expect_error(aclient.views_open(trigger_id="t", view=long_title), "invalid_arguments")
    assert "/view/title/text" in err.response["response_metadata"]["messages"][0]
    await expect_error(
        aclient.views_open(trigger_id="t", view=dict(view, submit={"type": "plain_text", "text": "s" * 25})),
        "invalid_arguments",
    )
    await expect_error(
        aclient.views_open(trigger_id="t", view=dict(view, blocks=[section("x")] * 101)), "invalid_arguments"
    )
    assert (await aclient.views_open(trigger_id="t", view=dict(view, blocks=[section("x")] * 100)))["ok"]

    updated = await aclient.views_update(
        view_id=v["id"], hash=v["hash"], view=dict(view, private_metadata="x")
    )
    assert updated["view"]["id"] == v["id"] and fake.views[v["id"]]["private_metadata"] == "x"
    await expect_error(aclient.views_update(view_id="V404", view=view), "not_found")
    pushed = await aclient.views_push(trigger_id="trig-9", view=view)
    assert pushed["view"]["id"] != v["id"]


async def test_rate_limit_429(fake, aclient):
    fake.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as ei:
        await aclient.chat_postMessage(channel=CHAN, text="x")
    assert ei.value.response.status_code == 429
    assert ei.value.response.headers["Retry-After"] == "7"
    assert ei.value.response["error"] == "ratelimited"
    assert (await aclient.chat_postMessage(channel=CHAN, text="x"))["ok"]  # only the next call
    assert [c["status"] for c in fake.calls_to("chat.postMessage")] == [429, 200]


async def test_response_url(fake, aclient):
    posted = await aclient.chat_postMessage(channel=CHAN, text="draft", blocks=[section("draft")])
    url = fake.response_url("k1", channel=CHAN, message_ts=posted["ts"])
    # Bolt's respond() is slack_sdk's AsyncWebhookClient.send_dict(): JSON POST, plain "ok" answer.
    resp = await AsyncWebhookClient(url).send_dict(
        {"text": "Approved", "replace_original": True, "blocks": [section("Approved by <@U1>")]}
    )
    assert resp.status_code == 200 and resp.body == "ok"
    call = await fake.await_for(lambda c: c["method"] == "response_url")
    assert call["key"] == "k1" and call["args"]["replace_original"] is True
    assert fake.messages(CHAN)[0]["text"] == "Approved" and fake.messages(CHAN)[0]["edited"]
    await AsyncWebhookClient(url).send_dict({"text": "for you"})
    assert fake.ephemerals[-1]["text"] == "for you"
    bad = await AsyncWebhookClient(url).send_dict({"text": "x", "blocks": [section("y" * 3001)]})
    assert bad.status_code == 400 and bad.body == "invalid_blocks"
    plain = await AsyncWebhookClient(fake.response_url("unbound")).send_dict({"text": "hi"})
    assert plain.status_code == 200 and fake.calls_to("response_url")[-1]["key"] == "unbound"


def test_wait_for(fake):
    client = WebClient(token=TOKEN, base_url=fake.base_url)
    threading.Timer(0.2, lambda: client.chat_postMessage(channel=CHAN, text="later")).start()
    call = fake.wait_for(lambda c: c["args"].get("text") == "later", timeout=5)
    assert call["method"] == "chat.postMessage"
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"recent calls \(1\):\n  chat.postMessage"):
        fake.wait_for(lambda c: c["method"] == "views.open", timeout=0.3)
    assert time.monotonic() - start < 3


def test_render_message():
    msg = {
        "text": "fallback",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "INC-42: checkout 500s"}},
            section("*Draft reply*\nWe are investigating."),
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Severity*\nSEV2"},
                    {"type": "mrkdwn", "text": "*Owner*\n<@U1>"},
                ],
            },
            {"type": "divider"},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "confidence 0.82"},
                    {"type": "plain_text", "text": "model tiny"},
                ],
            },
            {
                "type": "actions",
                "elements": [button("Approve"), button("Edit", "edit"), button("Reject", "reject")],
            },
        ],
    }
    out = render_message(msg)
    assert out.splitlines()[0] == "=== INC-42: checkout 500s ==="
    assert "We are investigating." in out and "*Severity*\nSEV2" in out
    assert "confidence 0.82 | model tiny" in out
    assert out.splitlines()[-1] == "[Approve] [Edit] [Reject]"
    assert render_message({"text": "just text", "blocks": []}) == "just text"


# --------------------------------------------------------------------------------------------- signing


def test_sign_matches_slack_sdk_verifier():
    from slack_sdk.signature import SignatureVerifier

    body = slash_command_body("/ping", "hello world & more")
    headers = sign(SECRET, body, timestamp=int(time.time()))
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], sign("other", body)["X-Slack-Signature"]
    )
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def build_bolt(fake: FakeSlack) -> tuple[AsyncApp, FastAPI, dict]:
    seen: dict = {}
    # Only `client`: AsyncApp takes its token from client.token (passing token= too just logs a warning).
    # AsyncApp has no token_verification_enabled; it calls auth.test lazily on the first request, via
    # this client, i.e. against the fake.
    bolt = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=fake.base_url))

    @bolt.command("/ping")
    async def ping(ack, respond, command):
        await ack()
        seen["command"] = command
        await respond(f"pong {command['text']}")

    @bolt.action("approve")
    async def approve(ack, body, client, action):
        await ack()
        seen["action"] = action
        await client.chat_update(
            channel=body["container"]["channel_id"],
            ts=body["container"]["message_ts"],
            text=f"approved by {body['user']['id']}",
        )

    @bolt.view("edit_draft")
    async def edit(ack, view, body):
        seen["view"] = (view["private_metadata"], view["state"]["values"], body["user"]["id"])
        await ack()

    handler = AsyncSlackRequestHandler(bolt)
    api = FastAPI()

    @api.post("/slack/events")
    async def events(req: Request):
        return await handler.handle(req)

    return bolt, api, seen


async def test_bolt_accepts_signed_requests(fake):
    _, api, seen = build_bolt(fake)
    url = "http://bolt/slack/events"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api)) as http:
        body = slash_command_body("/ping", "hi", response_url=fake.response_url("ping-1"))
        resp = await post_signed(url, SECRET, body, client=http)
        assert resp.status_code == 200, resp.text
        call = await fake.await_for(lambda c: c["method"] == "response_url" and c["key"] == "ping-1")
        assert call["args"]["text"] == "pong hi"
        assert seen["command"]["user_id"] == "U_APPROVER" and seen["command"]["channel_id"] == CHAN
        assert fake.calls_to("auth.test"), "Bolt's single-team authorization calls auth.test on the fake"

        # Redelivery headers are accepted too.
        assert (await post_signed(url, SECRET, body, retry_num=1, client=http)).status_code == 200

        bad = await http.post(url, content=body, headers=sign("wrong-secret", body))
        assert bad.status_code == 401
        old = await post_signed(url, SECRET, body, timestamp=int(time.time()) - 6 * 60, client=http)
        assert old.status_code == 401
        tampered = await http.post(url, content=body + b"&x=1", headers=sign(SECRET, body))
        assert tampered.status_code == 401

        posted = await AsyncWebClient(token=TOKEN, base_url=fake.base_url).chat_postMessage(
            channel=CHAN, text="draft", blocks=[section("d")]
        )
        click = block_action_body(
            "approve",
            "draft-7",
            "U_APPROVER",
            CHAN,
            posted["ts"],
            response_url=fake.response_url("act-1"),
            message=fake.message(CHAN, posted["ts"]),
        )
        assert (await post_signed(url, SECRET, click, client=http)).status_code == 200
        await fake.await_for(lambda c: c["method"] == "chat.update")
        assert seen["action"]["value"] == "draft-7"
        assert fake.message(CHAN, posted["ts"])["text"] == "approved by U_APPROVER"

        values = {"draft": {"text": {"type": "plain_text_input", "value": "edited reply"}}}
        sub = view_submission_body("edit_draft", "INC-7", values, "U_APPROVER")
        resp = await post_signed(url, SECRET, sub, client=http)
        assert resp.status_code == 200 and resp.text == ""
        assert seen["view"] == ("INC-7", values, "U_APPROVER")


async def test_bolt_over_real_uvicorn(fake):
    _, api, seen = build_bolt(fake)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}/slack/events"
        body = slash_command_body("/ping", "net", response_url=fake.response_url("ping-2"))
        assert (await post_signed(url, SECRET, body)).status_code == 200
        call = await fake.await_for(lambda c: c["method"] == "response_url" and c["key"] == "ping-2")
        assert call["args"]["text"] == "pong net"
        assert (await post_signed(url, "nope", body)).status_code == 401
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
