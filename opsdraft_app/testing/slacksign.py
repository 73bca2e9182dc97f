"""Build and send requests signed the way Slack signs them (v0 HMAC-SHA256 request signatures).

Slack signs ``v0:{timestamp}:{raw body}`` with the app's signing secret and sends
``X-Slack-Request-Timestamp`` and ``X-Slack-Signature: v0=<hex>``. Bolt rejects (401) a bad signature
or a timestamp more than 5 minutes away from now.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

__all__ = [
    "sign",
    "slash_command_body",
    "block_action_body",
    "view_submission_body",
    "post_signed",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
APP_ID = "A_OPSDRAFT"
TEAM_DOMAIN = "opsdraft-fake"
VERIFICATION_TOKEN = "fake-verification-token"  # deprecated field Slack still sends


def sign(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with ``body``: timestamp, v0 signature and form content type."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    if isinstance(body, str):
        body = body.encode("utf-8")
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": FORM_CONTENT_TYPE,
    }


def _trigger_id() -> str:
    """Unique per request, as Slack's are: two identical requests would share a signature, which the bot
    refuses as a replay (bot/replay.py)."""
    return f"trig-{uuid.uuid4().hex[:12]}"


def _user(user_id: str, team_id: str) -> dict[str, Any]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def slash_command_body(
    command: str,
    text: str,
    user_id: str = "U_APPROVER",
    channel_id: str = "C_INCIDENTS",
    response_url: str = "",
    trigger_id: str | None = None,
    team_id: str = "T1",
) -> bytes:
    """A slash-command request body, urlencoded with the fields Slack sends."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_id.lower(),
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command if command.startswith("/") else f"/{command}",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }
    return urlencode(fields).encode("utf-8")


def _payload_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode("utf-8")


def block_action_body(
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    response_url: str = "",
    trigger_id: str | None = None,
    block_id: str = "actions",
    team_id: str = "T1",
    message: dict[str, Any] | None = None,
    button_text: str | None = None,
) -> bytes:
    """A ``block_actions`` interaction (a button click on a bot message) as ``payload=<json>``.

    ``message`` (e.g. from ``FakeSlack.message(channel, ts)``) supplies the clicked message's text/blocks.
    """
    msg = {
        "type": "message",
        "user": "U_BOT",
        "bot_id": "B_BOT",
        "app_id": APP_ID,
        "team": team_id,
        "ts": message_ts,
        "text": (message or {}).get("text", ""),
        "blocks": (message or {}).get("blocks", []),
    }
    if (message or {}).get("thread_ts"):
        msg["thread_ts"] = message["thread_ts"]  # type: ignore[index]
    payload = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": msg,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text or action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return _payload_body(payload)


def view_submission_body(
    callback_id: str,
    private_metadata: str,
    values: dict[str, dict[str, dict]],
    user_id: str,
    team_id: str = "T1",
    view_id: str = "V00000001",
    trigger_id: str | None = None,
) -> bytes:
    """A ``view_submission`` interaction (a modal's Submit).

    ``values`` is ``{block_id: {action_id: {"type": ..., "value": ...}}}``, as Slack's ``view.state.values``.
    """
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or _trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": "1700000000.fakehash",
            "title": {"type": "plain_text", "text": "OpsDraft", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": APP_ID,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": "B_BOT",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _payload_body(payload)


async def post_signed(
    url: str,
    secret: str,
    body: bytes,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    client: httpx.AsyncClient | None = None,
) -> httpx.Response:
    """POST ``body`` to ``url`` with Slack's signature headers.

    ``retry_num`` adds ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason`` as Slack does when redelivering.
    Pass ``client`` (e.g. one built on ``httpx.ASGITransport``) to reach an in-process app.
    """
    headers = sign(secret, body, timestamp)
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    if client is not None:
        return await client.post(url, content=body, headers=headers)
    async with httpx.AsyncClient(timeout=30) as c:
        return await c.post(url, content=body, headers=headers)
