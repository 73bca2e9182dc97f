"""What the live-incident commands, the summary's buttons and the channel's events do after their ack: the
database steps (livecommands.py, conversation.py) in a transaction off the event loop, then Slack (invite a new
lead, redraw the pinned summary, fetch a pinned message nobody captured). Like flows.py, nothing here raises
after an ack: errors are logged and told."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot import conversation, updates
from bot.channels import channel_of, incident_of_channel, refresh_summary
from bot.commands import UsageError
from bot.flows import TRY_AGAIN, Click, Flows
from bot.livecommands import Live, run_live, set_state
from opsdraft.metrics import SLACK_EVENTS
from opsdraft.models import Incident

log = logging.getLogger(__name__)


class IncidentFlows:
    def __init__(self, flows: Flows):
        self.flows, self.client, self.settings = flows, flows.client, flows.settings
        self.redactor = flows.rt.redactor

    async def command(self, p: Live, user: str, channel: str) -> str:
        try:
            answer = await self.flows.db(lambda s: run_live(s, self.settings, self.redactor, p, user, channel))
        except UsageError as exc:
            return str(exc)
        except Exception:  # see flows.AFTER_ACK
            log.exception("/incident %s failed after its ack", p.verb)
            return TRY_AGAIN
        if p.verb in ("lead", "role", "severity", "status"):
            await self._after_change(p, channel)
        return answer

    async def _after_change(self, p: Live, channel: str) -> None:
        """Bring a new lead or role holder into the channel, and redraw the pinned summary."""
        def load(s):
            row = channel_of(s, p.incident_id) if p.incident_id else incident_of_channel(s, channel)
            if row is None:
                return None, None
            s.expunge(row)
            inc = s.get(Incident, row.incident_id)
            s.expunge(inc)
            return inc, row

        try:
            inc, row = await self.flows.db(load)
            if row is None:
                return
            if p.verb in ("lead", "role"):
                await _ainvite(self.client, row.channel_id, [p.args[-1]])
            await refresh_summary(self.client, inc, row)
        except Exception:  # the change is stored; a stale summary is not worth failing the command for
            log.warning("could not update incident channel after /incident %s", p.verb, exc_info=True)

    async def state_button(self, click: Click) -> None:
        try:
            ident, state = click.value.split(":", 1)
            answer = await self.flows.db(lambda s: set_state(s, self.settings, self.redactor,
                                                             s.get(Incident, int(ident)), click.user, state))
            await self._after_change(Live("status", int(ident), (state,)), click.channel)
            await self.flows.tell(click.channel, click.user, answer)
        except Exception:
            log.exception("status button failed after its ack")
            await self.flows.tell(click.channel, click.user, TRY_AGAIN)

    async def update_button(self, click: Click) -> None:
        try:
            d = await self.flows.db(lambda s: updates.draft_update(s, self.settings, int(click.value), click.user))
            await self.flows.tell(click.channel, click.user, f"Drafting status update #{d.id}.")
        except Exception:
            log.exception("status update button failed after its ack")
            await self.flows.tell(click.channel, click.user, TRY_AGAIN)

    async def message(self, event: dict) -> None:
        try:
            outcome = await self.flows.db(lambda s: conversation.on_message(s, self.settings, self.redactor, event))
        except Exception:  # a bad event is dropped, not retried forever: Slack has our ack
            log.exception("could not capture a message event")
            outcome = "failed"
        SLACK_EVENTS.labels("message", outcome).inc()

    async def reaction(self, event: dict) -> None:
        item = event.get("item") or {}
        if event.get("reaction") not in conversation.PIN_REACTIONS or item.get("type") != "message":
            SLACK_EVENTS.labels("reaction_added", "ignored").inc()
            return
        await self._pin(item.get("channel", ""), item.get("ts", ""), event.get("user", ""), None, "reaction_added")

    async def pinned(self, event: dict) -> None:
        item = event.get("item") or {}
        message = item.get("message") or {}
        await self._pin(event.get("channel_id") or item.get("channel", ""), message.get("ts", ""),
                        event.get("user", ""), message or None, "pin_added")

    async def _pin(self, channel: str, ts: str, by: str, message: dict | None, kind: str) -> None:
        def pin(s, msg):
            return conversation.on_pin(s, self.settings, self.redactor, channel, ts, by, msg)

        try:
            outcome = await self.flows.db(pin, message)
            if outcome == "missing":  # posted before the channel was an incident's, or its event was lost
                found = await self.client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1)
                msgs = [m for m in found.get("messages") or [] if m.get("ts") == ts]
                outcome = await self.flows.db(pin, msgs[0]) if msgs else "ignored"
        except SlackApiError as exc:
            log.warning("could not read the pinned message: %s", exc.response.get("error"))
            outcome = "failed"
        except Exception:
            log.exception("could not record a pin")
            outcome = "failed"
        SLACK_EVENTS.labels(kind, outcome).inc()


async def _ainvite(client, channel: str, users: list[str]) -> None:
    for user in users:
        try:
            await client.conversations_invite(channel=channel, users=user)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("already_in_channel", "cant_invite_self"):
                log.warning("could not invite %s: %s", user, exc.response.get("error"))

