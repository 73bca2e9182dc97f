"""What a click or a modal submission does: approve (then publish), open the Edit / Reject / Regenerate modals,
apply what they submit, publish an approved postmortem or timeline to Slack as final, and retry the final posts
that failed (`publish_approved`). The listeners in app.py only ack, read the request and call in here; the
database transitions are in service.py. Everything here runs after the ack.

Names at publish: drafts hold placeholders (<PERSON_1>) wherever they are stored or shown, and postmortems and
timelines are posted as final with them. An approved ticket reply is not sent from here: service.approve
queues a TicketReply in the outbox with its scope, and the outbox relay (started by opsdraft_app/runner.py
with opsdraft.privacy.publish_transform) puts the customer's name back as it produces it to ticket-replies.
The relay runs in every process whatever its roles, which is why that hook is there and not here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.orm import Session

from bot import channels, service
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
from bot.commands import UsageError
from opsdraft import periodic
from opsdraft.models import Draft, utcnow
from opsdraft.privacy import ScopedRedactor, subject_scope
from opsdraft.runtime import Runtime
from opsdraft.slacktext import escape, plain

log = logging.getLogger(__name__)
# AFTER_ACK: a listener must not raise once it has acked: Bolt may then answer Slack with an error (a 404)
# instead of the ack, and the user learns nothing. Flows log unexpected errors and tell the user instead.
TRY_AGAIN = "Something went wrong on opsdraft's side; please try again in a moment."
MODALS = {"edit": edit_modal, "reject": reject_modal, "regenerate": regenerate_modal}
EDITABLE_CHARS = 3000  # a plain_text_input holds at most this much; a longer draft could not be saved whole


def slack_client(rt: Runtime) -> AsyncWebClient:
    return AsyncWebClient(token=rt.settings.slack_bot_token, base_url=rt.settings.slack_api_url,
                          retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)])


@dataclass(frozen=True)
class Click:
    """A button under a draft message, as the listener read it from the request."""

    user: str
    channel: str  # "" when the request names none
    value: str  # the draft id; parsed by the flow, so that a bad one is answered rather than raised after the ack
    trigger_id: str = ""


class Flows:
    """Runs database work off the event loop and talks to Slack about its results."""

    def __init__(self, rt: Runtime, client: AsyncWebClient):
        self.rt, self.settings, self.client = rt, rt.settings, client
        self.approvers = Approvers(rt.settings, client)

    async def db(self, fn: Callable[..., Any], *args) -> Any:
        """`fn(session, *args)` in one transaction, in a thread: the database must not block the event loop."""
        def run():
            with self.rt.db.session() as s:
                return fn(s, *args)

        return await asyncio.to_thread(run)

    async def tell(self, channel: str, user: str, text: str) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell %s: %s", user, exc.response.get("error"))

    def redact_for(self, s: Session, d: Draft, text: str) -> str:
        """Free text typed about a draft gets the same placeholders as the draft's own subject, in the same
        scope as its ingest (a ticket's external id, not the database id): a name the approver types is then
        restored as that name, and sealed like the ticket's own (only a ticket's scope is ever restored)."""
        scope = subject_scope(s, d.subject_type, d.subject_id)
        return ScopedRedactor(s, self.rt.redactor, self.settings.redaction_key_bytes(), scope,
                              seal=d.subject_type == "ticket").text(text)

    async def run_command(self, fn: Callable[[Session], str]) -> str:
        """A slash command's answer, or what to tell the user instead."""
        try:
            return await self.db(fn)
        except UsageError as exc:
            return str(exc)
        except Exception:  # see AFTER_ACK
            log.exception("slash command failed after its ack")
            return TRY_AGAIN

    async def clicked_draft(self, click: Click, action: str) -> Draft | None:
        """The clicked draft, or None after telling a user who may not act on its kind (or a lost draft)."""
        channel = click.channel or self.settings.slack_incident_channel
        try:
            d = await self.db(service.get_draft, int(click.value))
        except service.FlowError as exc:
            await self.tell(channel, click.user, str(exc))
            return None
        except Exception:  # see AFTER_ACK
            log.exception("could not load the clicked draft")
            await self.tell(channel, click.user, TRY_AGAIN)
            return None
        if not await self.approvers.allows(click.user, d.kind):
            await self.tell(channel, click.user, f"Only configured approvers of {d.kind.replace('_', ' ')} "
                                                 f"drafts can {action} them.")
            return None
        return d

    async def approve(self, click: Click) -> None:
        """Approve, then post the final text. Approval commits first, so a failed post leaves the draft approved
        (the approver is told) and `publish_approved` posts it later."""
        channel, user = click.channel or self.settings.slack_incident_channel, click.user
        d = await self.clicked_draft(click, "approve")
        if d is None:
            return
        draft_id = d.id
        try:
            d = await self.db(service.approve, self.settings, draft_id, user)
            await self.refresh_message(d)
            d = await self.publish(d, user)
            await self.refresh_message(d)
        except service.FlowError as exc:
            await self.tell(channel, user, str(exc))
        except SlackApiError as exc:
            await self.tell(channel, user, f"Approved, but posting failed ({exc.response.get('error')}).")
        except SlackClientError as exc:  # e.g. the file upload of a long postmortem failed
            log.warning("posting approved draft #%s failed: %s", draft_id, exc)
            await self.tell(channel, user, "Approved, but posting it to Slack failed; see the bot's log.")
        except Exception:  # see AFTER_ACK
            log.exception("approving draft #%s failed after its ack", draft_id)
            await self.tell(channel, user, TRY_AGAIN)

    async def open_modal(self, click: Click, action: str) -> None:
        """The Edit, Reject or Regenerate modal, for a draft that can still be changed."""
        d = await self.clicked_draft(click, action)
        if d is None:
            return
        # No fallback channel here, unlike clicked_draft's: a button on a message always names its channel.
        channel, user = click.channel, click.user
        try:
            if d.status != "pending":
                return await self.tell(channel, user, f"Draft #{d.id} is already {d.status}.")
            if action == "edit" and len(d.body) > EDITABLE_CHARS:
                return await self.tell(channel, user, f"Draft #{d.id} is too long to edit in Slack.")
            await self.client.views_open(trigger_id=click.trigger_id, view=MODALS[action](d))
        except service.FlowError as exc:
            await self.tell(channel, user, str(exc))
        except SlackApiError as exc:
            log.warning("could not open the %s modal: %s", action, exc.response.get("error"))

    async def edit(self, user: str, draft_id: int, text: str) -> None:
        def change(s: Session) -> Draft:
            old = service.get_draft(s, draft_id)
            service.edit(s, self.settings, draft_id, user, self.redact_for(s, old, text))
            return old  # superseded now: its message loses the buttons; the new version is posted when ready

        await self._submitted(user, draft_id, change)

    async def reject(self, user: str, draft_id: int, reason: str) -> None:
        def change(s: Session) -> Draft:
            d = service.get_draft(s, draft_id)
            return service.reject(s, draft_id, user, self.redact_for(s, d, reason))

        await self._submitted(user, draft_id, change)

    async def regenerate(self, user: str, draft_id: int, instructions: str) -> None:
        def change(s: Session) -> Draft:
            d = service.get_draft(s, draft_id)
            text = self.redact_for(s, d, instructions) if instructions else ""
            return service.regenerate(s, self.settings, draft_id, user, text)

        await self._submitted(user, draft_id, change)

    async def _submitted(self, user: str, draft_id: int, change: Callable[[Session], Draft]) -> None:
        """Apply a modal's submission (`change` returns the draft whose message to refresh)."""
        channel = self.settings.slack_incident_channel  # a view submission names no channel
        try:
            d = await self.db(service.get_draft, draft_id)
            # Checked again on submit: approvers may have changed since the modal opened.
            if not await self.approvers.allows(user, d.kind):
                return await self.tell(channel, user, f"Only configured approvers of {d.kind.replace('_', ' ')} "
                                                      f"drafts can change them.")
            await self.refresh_message(await self.db(change))
        except service.FlowError as exc:
            await self.tell(channel, user, str(exc))
        except Exception:  # see AFTER_ACK; e.g. a double submit racing on the same redaction placeholder
            log.exception("modal submission for draft #%s failed after its ack", draft_id)
            await self.tell(channel, user, TRY_AGAIN)

    async def refresh_message(self, d: Draft) -> None:
        """Redraw the draft's message for its new status (the buttons go once it is decided)."""
        if not (d.slack_channel and d.slack_ts):
            return
        try:
            await self.client.chat_update(channel=d.slack_channel, ts=d.slack_ts, text=draft_fallback_text(d),
                                          blocks=draft_blocks(d))
        except SlackApiError as exc:
            if exc.response.get("error") != "is_archived":  # redrawn already, before its channel was archived
                log.warning("could not update draft #%s message: %s", d.id, exc.response.get("error"))

    async def publish(self, d: Draft, user: str) -> Draft:
        """Post an approved postmortem or timeline as final, then mark it published. Ticket replies were
        published as they were approved (see the module's docstring)."""
        if d.kind == "ticket_reply":
            return d
        channel = d.slack_channel or self.settings.slack_incident_channel
        if d.kind == "status_update":  # for stakeholders; without a channel of theirs, where it was approved
            channel = self.settings.slack_stakeholder_channel or channel
        posted = await self.client.chat_postMessage(channel=channel, text=f"{escape(d.title)} (final)",
                                                    blocks=published_blocks(d))
        if not fits_one_message(d):  # over Slack's block limit: the whole text goes in the thread as a file
            await self.client.files_upload_v2(channel=channel, thread_ts=posted["ts"], content=draft_markdown(d),
                                              filename=markdown_filename(d), title=plain(f"{d.title} (final)"))
        d = await self.db(lambda s: service.mark_published(s, s.get(Draft, d.id), user))
        if archive := await self.db(lambda s: channels.to_archive(s, self.settings, d)):
            await self.refresh_message(d)  # shown as published while the channel still takes updates
            await channels.archive(self.client, self.db, archive)  # a closed incident's channel, its postmortem in
        return d


async def publish_approved(rt: Runtime, stop: asyncio.Event, every: float = 30.0, grace_s: float = 60.0,
                           client=None) -> None:
    """Post as final any postmortem or timeline that was approved but never posted (Slack refused or was away
    when it was clicked): approval is recorded first, so nothing approved is left unpublished. The click
    handler gets `grace_s` to post it itself; a post whose marking failed may be posted twice."""
    flows = Flows(rt, client or slack_client(rt))

    async def once() -> None:  # Slack or the database away: the next round tries again
        for d in await flows.db(service.approved_unposted, utcnow() - timedelta(seconds=grace_s)):
            log.info("posting approved draft #%s as final (it was not posted when approved)", d.id)
            d = await flows.publish(d, d.decided_by or "opsdraft")
            await flows.refresh_message(d)

    await periodic.every(every, stop, once, "posting approved drafts")
