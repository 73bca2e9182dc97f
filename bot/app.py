"""The slack-bolt AsyncApp: slash commands and the Approve / Edit / Reject flow. Every listener acks first,
then does its work; Slack API errors are caught inside the listener so they never turn into HTTP errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import service
from bot.blocks import draft_blocks, draft_fallback_text, edit_modal, published_blocks, reject_modal
from bot.commands import UsageError, parse_incident, parse_ticket, run_incident, run_ticket
from opsdraft.metrics import SLACK_ACTIONS
from opsdraft.models import Draft
from opsdraft.privacy import ScopedRedactor
from opsdraft.runtime import Runtime

log = logging.getLogger(__name__)


def slack_client(rt: Runtime) -> AsyncWebClient:
    return AsyncWebClient(token=rt.settings.slack_bot_token, base_url=rt.settings.slack_api_url,
                          retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)])


class Flows:
    """Runs database flows off the event loop and talks to Slack about their results."""

    def __init__(self, rt: Runtime, client: AsyncWebClient):
        self.rt, self.client = rt, client

    async def db(self, fn: Callable[..., Any], *args) -> Any:
        def run():
            with self.rt.db.session() as s:
                return fn(s, *args)

        return await asyncio.to_thread(run)

    def may_approve(self, user: str) -> bool:
        approvers = self.rt.settings.approvers
        return not approvers or user in approvers

    def redact_for(self, s, d: Draft, text: str) -> str:
        scope = f"{d.subject_type}:{d.subject_id}"
        return ScopedRedactor(s, self.rt.redactor, self.rt.settings.redaction_key_bytes(), scope).text(text)

    async def tell(self, channel: str, user: str, text: str) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell %s: %s", user, exc.response.get("error"))

    async def refresh_message(self, d: Draft) -> None:
        if not (d.slack_channel and d.slack_ts):
            return
        try:
            await self.client.chat_update(channel=d.slack_channel, ts=d.slack_ts, text=draft_fallback_text(d),
                                          blocks=draft_blocks(d))
        except SlackApiError as exc:
            log.warning("could not update draft #%s message: %s", d.id, exc.response.get("error"))

    async def publish(self, d: Draft, user: str) -> Draft:
        """Post an approved postmortem or timeline as final, then mark it published."""
        if d.kind == "ticket_reply":
            return d
        await self.client.chat_postMessage(channel=self.rt.settings.slack_incident_channel,
                                           text=f"{d.title} (final)", blocks=published_blocks(d))

        def mark(s):
            row = s.get(Draft, d.id)
            service.mark_published(s, row, user)
            return row

        return await self.db(mark)


def build_app(rt: Runtime, client: AsyncWebClient | None = None) -> AsyncApp:
    client = client or slack_client(rt)
    app = AsyncApp(signing_secret=rt.settings.slack_signing_secret, client=client,
                   raise_error_for_unhandled_request=False)
    flows = Flows(rt, client)
    settings = rt.settings

    @app.command("/incident")
    async def incident(ack, command, respond):
        SLACK_ACTIONS.labels("incident").inc()
        try:
            parsed = parse_incident(command.get("text", ""))
        except UsageError as exc:
            return await ack(str(exc))
        await ack()
        await _answer(respond, flows, lambda s: run_incident(s, settings, parsed, command["user_id"]))

    @app.command("/ticket")
    async def ticket(ack, command, respond):
        SLACK_ACTIONS.labels("ticket").inc()
        try:
            parsed = parse_ticket(command.get("text", ""))
        except UsageError as exc:
            return await ack(str(exc))
        await ack()
        await _answer(respond, flows, lambda s: run_ticket(s, settings, parsed, command["user_id"]))

    @app.command("/opsdraft")
    async def help_(ack):
        SLACK_ACTIONS.labels("help").inc()
        from bot.commands import INCIDENT_USAGE, TICKET_USAGE

        await ack(f"opsdraft drafts incident timelines, postmortems and ticket replies for your approval.\n"
                  f"{INCIDENT_USAGE}\n{TICKET_USAGE}")

    @app.action("draft_approve")
    async def approve(ack, body):
        await ack()
        SLACK_ACTIONS.labels("approve").inc()
        user, channel = body["user"]["id"], body.get("channel", {}).get("id", settings.slack_incident_channel)
        if not flows.may_approve(user):
            return await flows.tell(channel, user, "Only configured approvers can approve drafts.")
        draft_id = int(body["actions"][0]["value"])
        try:
            d = await flows.db(lambda s: service.approve(s, settings, draft_id, user))
            await flows.refresh_message(d)
            d = await flows.publish(d, user)
            await flows.refresh_message(d)
        except service.FlowError as exc:
            await flows.tell(channel, user, str(exc))
        except SlackApiError as exc:
            await flows.tell(channel, user, f"Approved, but posting failed ({exc.response.get('error')}).")

    @app.action("draft_edit")
    async def edit(ack, body):
        await ack()
        await _open_modal(flows, body, edit_modal, "edit")

    @app.action("draft_reject")
    async def reject(ack, body):
        await ack()
        await _open_modal(flows, body, reject_modal, "reject")

    @app.view("draft_edit_submit")
    async def edit_submit(ack, body, view):
        text = view["state"]["values"]["body"]["body_input"].get("value") or ""
        if not text.strip():
            return await ack(response_action="errors", errors={"body": "The draft cannot be empty."})
        await ack()
        user, draft_id = body["user"]["id"], int(view["private_metadata"])

        def run(s):
            old = service.get_draft(s, draft_id)
            new = service.edit(s, settings, draft_id, user, flows.redact_for(s, old, text))
            return s.get(Draft, draft_id), new

        await _decide(flows, user, run)

    @app.view("draft_reject_submit")
    async def reject_submit(ack, body, view):
        reason = view["state"]["values"]["reason"]["reason_input"].get("value") or ""
        if len(reason.strip()) < 3:
            return await ack(response_action="errors", errors={"reason": "Say briefly why (3+ characters)."})
        await ack()
        user, draft_id = body["user"]["id"], int(view["private_metadata"])

        def run(s):
            d = service.get_draft(s, draft_id)
            return service.reject(s, draft_id, user, flows.redact_for(s, d, reason)), None

        await _decide(flows, user, run)

    return app


async def _answer(respond, flows: Flows, fn) -> None:
    try:
        text = await flows.db(fn)
    except UsageError as exc:
        text = str(exc)
    try:
        await respond(text=text, response_type="ephemeral")
    except Exception:  # an unreachable response_url must not fail the listener after its ack
        log.warning("could not respond to a slash command", exc_info=True)


async def _open_modal(flows: Flows, body: dict, modal, action: str) -> None:
    SLACK_ACTIONS.labels(action).inc()
    user, channel = body["user"]["id"], body.get("channel", {}).get("id", "")
    if not flows.may_approve(user):
        return await flows.tell(channel, user, f"Only configured approvers can {action} drafts.")
    draft_id = int(body["actions"][0]["value"])
    try:
        d = await flows.db(lambda s: service.get_draft(s, draft_id))
        if d.status != "pending":
            return await flows.tell(channel, user, f"Draft #{d.id} is already {d.status}.")
        if action == "edit" and len(d.body) > 3000:
            return await flows.tell(channel, user, f"Draft #{d.id} is too long to edit in Slack.")
        await flows.client.views_open(trigger_id=body["trigger_id"], view=modal(d))
    except service.FlowError as exc:
        await flows.tell(channel, user, str(exc))
    except SlackApiError as exc:
        log.warning("could not open the %s modal: %s", action, exc.response.get("error"))


async def _decide(flows: Flows, user: str, run) -> None:
    try:
        old, _new = await flows.db(run)
        await flows.refresh_message(old)
    except service.FlowError as exc:
        await flows.tell(flows.rt.settings.slack_incident_channel, user, str(exc))
