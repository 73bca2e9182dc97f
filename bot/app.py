"""The slack-bolt AsyncApp: slash commands and the Approve / Edit / Reject flow. Every listener acks first,
then does its work; Slack API errors are caught inside the listener so they never turn into HTTP errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import service
from bot.approvers import Approvers
from bot.blocks import (
    draft_blocks,
    draft_fallback_text,
    draft_markdown,
    edit_modal,
    fits_one_message,
    markdown_filename,
    published_blocks,
    regenerate_modal,
    reject_modal,
)
from bot.commands import UsageError, parse_incident, parse_ticket, run_incident, run_ticket
from opsdraft.metrics import SLACK_ACTIONS
from opsdraft.models import Draft
from opsdraft.privacy import ScopedRedactor
from opsdraft.runtime import Runtime

log = logging.getLogger(__name__)
# AFTER_ACK: a listener must not raise once it has acked: Bolt may then answer Slack with an error (a 404)
# instead of the ack, and the user learns nothing. Listeners log unexpected errors and tell the user instead.
TRY_AGAIN = "Something went wrong on opsdraft's side; please try again in a moment."


def slack_client(rt: Runtime) -> AsyncWebClient:
    return AsyncWebClient(token=rt.settings.slack_bot_token, base_url=rt.settings.slack_api_url,
                          retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)])


class Flows:
    """Runs database flows off the event loop and talks to Slack about their results."""

    def __init__(self, rt: Runtime, client: AsyncWebClient):
        self.rt, self.client = rt, client
        self.approvers = Approvers(rt.settings, client)

    async def db(self, fn: Callable[..., Any], *args) -> Any:
        def run():
            with self.rt.db.session() as s:
                return fn(s, *args)

        return await asyncio.to_thread(run)

    async def draft_if_allowed(self, body: dict, action: str) -> Draft | None:
        """The clicked draft, or None after telling a user who may not act on its kind (or a lost draft)."""
        user, channel = body["user"]["id"], body.get("channel", {}).get("id", self.rt.settings.slack_incident_channel)
        try:
            d = await self.db(lambda s: service.get_draft(s, int(body["actions"][0]["value"])))
        except service.FlowError as exc:
            await self.tell(channel, user, str(exc))
            return None
        except Exception:  # see AFTER_ACK
            log.exception("could not load the clicked draft")
            await self.tell(channel, user, TRY_AGAIN)
            return None
        if not await self.approvers.allows(user, d.kind):
            await self.tell(channel, user, f"Only configured approvers of {d.kind.replace('_', ' ')} drafts can "
                                           f"{action} them.")
            return None
        return d

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
        channel = d.slack_channel or self.rt.settings.slack_incident_channel
        posted = await self.client.chat_postMessage(channel=channel, text=f"{d.title} (final)",
                                                    blocks=published_blocks(d))
        if not fits_one_message(d):  # over Slack's block limit: the whole text goes in the thread as a file
            await self.client.files_upload_v2(channel=channel, thread_ts=posted["ts"], content=draft_markdown(d),
                                              filename=markdown_filename(d), title=f"{d.title} (final)")

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
        await _answer(respond, flows, lambda s: run_incident(
            s, settings, parsed, command["user_id"], rt.redactor.redact, command.get("response_url", ""),
            command.get("channel_id", "")))

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
                  f"{INCIDENT_USAGE}\n{TICKET_USAGE}\n"
                  "Each draft has Approve, Edit (saves a new version), Reject (asks why) and Regenerate (optional "
                  "instructions). Only configured approvers may use them; an approved draft never changes.")

    @app.action("draft_approve")
    async def approve(ack, body):
        await ack()
        SLACK_ACTIONS.labels("approve").inc()
        user, channel = body["user"]["id"], body.get("channel", {}).get("id", settings.slack_incident_channel)
        d = await flows.draft_if_allowed(body, "approve")
        if d is None:
            return
        draft_id = d.id
        try:
            d = await flows.db(lambda s: service.approve(s, settings, draft_id, user))
            await flows.refresh_message(d)
            d = await flows.publish(d, user)
            await flows.refresh_message(d)
        except service.FlowError as exc:
            await flows.tell(channel, user, str(exc))
        except SlackApiError as exc:
            await flows.tell(channel, user, f"Approved, but posting failed ({exc.response.get('error')}).")
        except SlackClientError as exc:  # e.g. the file upload of a long postmortem failed
            log.warning("posting approved draft #%s failed: %s", draft_id, exc)
            await flows.tell(channel, user, "Approved, but posting it to Slack failed; see the bot's log.")
        except Exception:  # see AFTER_ACK
            log.exception("approving draft #%s failed after its ack", draft_id)
            await flows.tell(channel, user, TRY_AGAIN)

    @app.action("draft_edit")
    async def edit(ack, body):
        await ack()
        await _open_modal(flows, body, edit_modal, "edit")

    @app.action("draft_reject")
    async def reject(ack, body):
        await ack()
        await _open_modal(flows, body, reject_modal, "reject")

    @app.action("draft_regenerate")
    async def regenerate(ack, body):
        await ack()
        await _open_modal(flows, body, regenerate_modal, "regenerate")

    @app.view("draft_regenerate_submit")
    async def regenerate_submit(ack, body, view):
        values = view["state"]["values"].get("instructions", {}).get("instructions_input", {})
        instructions = (values.get("value") or "").strip()
        if len(instructions) > 1000:
            return await ack(response_action="errors", errors={"instructions": "Keep it under 1,000 characters."})
        await ack()
        user, draft_id = body["user"]["id"], int(view["private_metadata"])

        def run(s):
            d = service.get_draft(s, draft_id)
            text = flows.redact_for(s, d, instructions) if instructions else ""
            return service.regenerate(s, settings, draft_id, user, text), None

        await _decide(flows, user, draft_id, run)

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

        await _decide(flows, user, draft_id, run)

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

        await _decide(flows, user, draft_id, run)

    return app


async def _answer(respond, flows: Flows, fn) -> None:
    try:
        text = await flows.db(fn)
    except UsageError as exc:
        text = str(exc)
    except Exception:  # see AFTER_ACK
        log.exception("slash command failed after its ack")
        text = TRY_AGAIN
    try:
        await respond(text=text, response_type="ephemeral")
    except Exception:  # an unreachable response_url must not fail the listener after its ack
        log.warning("could not respond to a slash command", exc_info=True)


async def _open_modal(flows: Flows, body: dict, modal, action: str) -> None:
    SLACK_ACTIONS.labels(action).inc()
    user, channel = body["user"]["id"], body.get("channel", {}).get("id", "")
    d = await flows.draft_if_allowed(body, action)
    if d is None:
        return
    try:
        if d.status != "pending":
            return await flows.tell(channel, user, f"Draft #{d.id} is already {d.status}.")
        if action == "edit" and len(d.body) > 3000:
            return await flows.tell(channel, user, f"Draft #{d.id} is too long to edit in Slack.")
        await flows.client.views_open(trigger_id=body["trigger_id"], view=modal(d))
    except service.FlowError as exc:
        await flows.tell(channel, user, str(exc))
    except SlackApiError as exc:
        log.warning("could not open the %s modal: %s", action, exc.response.get("error"))


async def _decide(flows: Flows, user: str, draft_id: int, run) -> None:
    channel = flows.rt.settings.slack_incident_channel
    try:
        d = await flows.db(lambda s: service.get_draft(s, draft_id))
        # Checked again on submit: approvers may have changed since the modal opened.
        if not await flows.approvers.allows(user, d.kind):
            return await flows.tell(channel, user, f"Only configured approvers of {d.kind.replace('_', ' ')} "
                                                   f"drafts can change them.")
        old, _new = await flows.db(run)
        await flows.refresh_message(old)
    except service.FlowError as exc:
        await flows.tell(channel, user, str(exc))
    except Exception:  # see AFTER_ACK; e.g. a double submit racing on the same redaction placeholder
        log.exception("modal submission for draft #%s failed after its ack", draft_id)
        await flows.tell(channel, user, TRY_AGAIN)
