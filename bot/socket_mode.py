"""Socket Mode: Slack's requests arrive over a WebSocket the bot opens, so no public HTTPS URL is needed.
The same AsyncApp answers them as it answers POST /slack/events: slash commands, buttons and the Events API
(messages, reactions and pins in incident channels, bot/incidentflows.py). A redelivered event (Socket Mode
retries after a reconnect) changes nothing: a message or pin already on the timeline is recognised by its
channel and timestamp (bot/conversation.py)."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from opsdraft.runtime import Runtime
from opsdraft.settings import Settings

log = logging.getLogger(__name__)


def socket_mode_handler(app: AsyncApp, settings: Settings) -> AsyncSocketModeHandler | None:
    """A handler when OPSDRAFT_SLACK_APP_TOKEN is set, else None (HTTP only)."""
    if not settings.slack_app_token:
        return None
    return AsyncSocketModeHandler(app, app_token=settings.slack_app_token)


async def run(rt: Runtime, stop: asyncio.Event, slack_client=None) -> None:
    from bot.app import build_app

    handler = socket_mode_handler(build_app(rt, slack_client), rt.settings)
    if handler is None:
        return
    await handler.connect_async()
    log.info("connected to Slack over Socket Mode")
    try:
        await stop.wait()
    finally:
        await handler.close_async()
