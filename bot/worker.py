"""The bot's consumer: posts new drafts for approval and incident news to Slack. Alongside it runs the retry
of final posts that failed (flows.publish_approved); what a click on a draft does is in flows.py."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient
from sqlalchemy.orm import Session

from bot import channels
from bot.blocks import draft_blocks, draft_fallback_text, incident_line
from bot.flows import publish_approved
from opsdraft.bus import Handler, InvalidMessage, consume, typed_handler
from opsdraft.events import DraftReady, IncidentEvent, SimilarResult
from opsdraft.models import AuditLog, Draft, Incident
from opsdraft.reconcile import POSTED_EVENT
from opsdraft.runtime import Runtime
from opsdraft.slacktext import escape

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
        channel = channels.draft_channel(s, self.settings, d)
        resp = self.client.chat_postMessage(channel=channel, text=draft_fallback_text(d), blocks=draft_blocks(d))
        d.slack_channel, d.slack_ts = resp["channel"], resp["ts"]

    def answer_similar(self, res: SimilarResult) -> None:
        req = res.request
        if res.matches:
            lines = [f"• `{escape(m.key)}` {escape(m.title)} (similarity {m.score:.2f})" for m in res.matches]
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
        # Committed only if the post below succeeds: how opsdraft/reconcile.py tells a posted event from a lost one.
        s.add(AuditLog(actor="opsdraft", action=POSTED_EVENT, object_type="incident", object_id=str(inc.id),
                       detail={"event": ev.event}))
        icon = {"opened": ":rotating_light:", "reopened": ":repeat:"}.get(ev.event, ":white_check_mark:")
        text = f"{icon} Incident {ev.event}: {incident_line(inc)}"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        if self.settings.slack_channel_per_incident:
            row = channels.channel_of(s, inc.id)
            if ev.event == "opened" or (row is None and ev.event == "reopened"):
                channels.open_channel(self.client, s, self.settings, inc)  # announces it in the incidents channel
                return
            if row is not None and row.archived_at is None:  # the incidents channel hears of it too, below
                self.client.chat_postMessage(channel=row.channel_id, text=text, blocks=blocks)
        self.client.chat_postMessage(channel=self.settings.slack_incident_channel, text=text, blocks=blocks)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    t = rt.settings.topics
    await asyncio.gather(
        consume(rt.bus, rt.db, [t.drafts_ready, t.incident_events, t.similar_results],
                f"{rt.settings.consumer_group}-bot", Poster(rt).handler(), t.dead_letters, rt.redactor.redact, stop),
        publish_approved(rt, stop),
    )
