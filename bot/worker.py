"""The bot's consumer: posts new drafts for approval and incident news to Slack."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.blocks import draft_blocks, draft_fallback_text, incident_line
from opsdraft.bus import Handler, InvalidMessage, consume, typed_handler
from opsdraft.events import DraftReady, IncidentEvent, SimilarResult
from opsdraft.models import Draft, DraftKind, DraftStatus, Incident, utcnow
from opsdraft.runtime import Runtime

log = logging.getLogger(__name__)


class Poster:
    def __init__(self, rt: Runtime):
        self.settings = rt.settings
        self.client = WebClient(token=rt.settings.slack_bot_token, base_url=rt.settings.slack_api_url,
                                retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])

    def handler(self) -> Handler:
        t = self.settings.topics
        return typed_handler({
            t.drafts_ready: (DraftReady, self.post_draft),
            t.similar_results: (SimilarResult, lambda s, res: self.answer_similar(res)),
            t.incident_events: (IncidentEvent, self.post_incident_event),
        })

    def post_draft(self, s: Session, ready: DraftReady) -> None:
        d = s.get(Draft, ready.draft_id)
        if d is None:
            raise InvalidMessage(f"draft {ready.draft_id} does not exist")
        if d.slack_ts:
            return  # posted already; this is a redelivery
        channel = (self.settings.slack_support_channel if d.kind == "ticket_reply"
                   else self.settings.slack_incident_channel)
        resp = self.client.chat_postMessage(channel=channel, text=draft_fallback_text(d), blocks=draft_blocks(d))
        d.slack_channel, d.slack_ts = resp["channel"], resp["ts"]

    def answer_similar(self, res: SimilarResult) -> None:
        req = res.request
        if res.matches:
            lines = [f"• `{m.key}` {m.title} (similarity {m.score:.2f})" for m in res.matches]
            text = f"Past incidents most like #{req.incident_id}:\n" + "\n".join(lines)
        else:
            text = f"No closed incident in the index resembles #{req.incident_id} yet."
        if req.response_url:
            resp = WebhookClient(req.response_url).send(text=text[:3000], response_type="ephemeral")
            if resp.status_code == 200:
                return
            log.warning("response_url answered %s; falling back to an ephemeral message", resp.status_code)
        if req.channel:
            try:
                self.client.chat_postEphemeral(channel=req.channel, user=req.requested_by, text=text[:3000])
            except SlackApiError as exc:  # an expired answer is not worth a dead letter or a retry loop
                log.warning("could not answer /incident similar: %s", exc.response.get("error"))

    def post_incident_event(self, s: Session, ev: IncidentEvent) -> None:
        inc = s.get(Incident, ev.incident_id)
        if inc is None:
            raise InvalidMessage(f"incident {ev.incident_id} does not exist")
        icon = {"opened": ":rotating_light:", "reopened": ":repeat:"}.get(ev.event, ":white_check_mark:")
        text = f"{icon} Incident {ev.event}: {incident_line(inc)}"
        self.client.chat_postMessage(channel=self.settings.slack_incident_channel, text=text,
                                     blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


async def publish_approved(rt: Runtime, stop: asyncio.Event, every: float = 30.0, grace_s: float = 60.0,
                           client=None) -> None:
    """Post as final any postmortem or timeline that was approved but never posted (Slack refused or was away
    when it was clicked): approval is recorded first, so nothing approved is left unpublished. The click
    handler gets `grace_s` to post it itself; a post whose marking failed may be posted twice."""
    from bot.app import Flows, slack_client

    flows = Flows(rt, client or slack_client(rt))

    def due(s: Session) -> list[Draft]:
        cutoff = utcnow() - timedelta(seconds=grace_s)
        return list(s.scalars(select(Draft).where(
            Draft.status == DraftStatus.approved, Draft.kind != DraftKind.ticket_reply, Draft.decided_at <= cutoff,
        ).order_by(Draft.id)))

    while not stop.is_set():
        try:
            for d in await flows.db(due):
                log.info("posting approved draft #%s as final (it was not posted when approved)", d.id)
                d = await flows.publish(d, d.decided_by or "opsdraft")
                await flows.refresh_message(d)
        except Exception as exc:  # Slack or the database away: the next round tries again
            log.warning("posting approved drafts failed; will retry: %r", exc)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    t = rt.settings.topics
    await asyncio.gather(
        consume(rt.bus, rt.db, [t.drafts_ready, t.incident_events, t.similar_results],
                f"{rt.settings.consumer_group}-bot", Poster(rt).handler(), t.dead_letters, rt.redactor.redact, stop),
        publish_approved(rt, stop),
    )
