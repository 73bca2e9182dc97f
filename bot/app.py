"""The slack-bolt AsyncApp: one listener per slash command, button and modal. A listener acks first (Slack
gives it 3 seconds), reads the request and hands it to a flow in flows.py, which does the work and answers the
user. Only wrong usage and invalid modal input are answered in the ack itself, where Slack shows them best.

Who may act is checked by the flows after the ack rather than by a listener middleware: middleware runs
before the listener acks, and the check may need a database read and a user-group lookup in Slack."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import replay
from bot.commands import HELP, UsageError, parse_incident, parse_ticket, run_incident, run_ticket
from bot.flows import Click, Flows, slack_client
from bot.ids import EDIT_BODY, REGENERATE_INSTRUCTIONS, REJECT_REASON, ActionId, CallbackId, ModalInput, SlashCommand
from bot.incidentflows import IncidentFlows
from bot.livecommands import parse_live
from opsdraft.metrics import SLACK_ACTIONS
from opsdraft.runtime import Runtime

log = logging.getLogger(__name__)


def build_app(rt: Runtime, client: AsyncWebClient | None = None) -> AsyncApp:
    client = client or slack_client(rt)
    app = AsyncApp(signing_secret=rt.settings.slack_signing_secret, client=client,
                   raise_error_for_unhandled_request=False)
    app.middleware(replay.middleware(rt.db))  # a signed request replayed within Slack's window runs once
    flows = Flows(rt, client)
    incidents = IncidentFlows(flows)
    _listen_to_commands(app, rt, flows, incidents)
    _listen_to_buttons(app, flows, incidents)
    _listen_to_modals(app, flows)
    _listen_to_events(app, incidents)
    return app


def _listen_to_events(app: AsyncApp, incidents: IncidentFlows) -> None:
    """The Events API (POST /slack/events, or Socket Mode): the conversation in incident channels. Bolt answers
    URL verification itself; opsdraft_app/http.py answers Slack's retries without running these."""

    @app.event("message")
    async def message(ack, event):
        await ack()
        await incidents.message(event)

    @app.event("reaction_added")
    async def reaction(ack, event):
        await ack()
        await incidents.reaction(event)

    @app.event("pin_added")
    async def pin(ack, event):
        await ack()
        await incidents.pinned(event)


def _listen_to_commands(app: AsyncApp, rt: Runtime, flows: Flows, incidents: IncidentFlows) -> None:
    settings = rt.settings
    roles = [r for r in settings.slack_incident_roles.split(",") if r]

    @app.command(SlashCommand.incident)
    async def incident(ack, command, respond):
        SLACK_ACTIONS.labels("incident").inc()
        text, channel = command.get("text", ""), command.get("channel_id", "")
        try:
            live = parse_live(text, roles)
            parsed = parse_incident(text) if live is None else None
        except UsageError as exc:
            return await ack(str(exc))
        await ack()
        if live is not None:
            return await _respond(respond, await incidents.command(live, command["user_id"], channel))
        await _respond(respond, await flows.run_command(lambda s: run_incident(
            s, settings, parsed, command["user_id"], rt.redactor.redact, command.get("response_url", ""),
            command.get("channel_id", ""))))

    @app.command(SlashCommand.ticket)
    async def ticket(ack, command, respond):
        SLACK_ACTIONS.labels("ticket").inc()
        try:
            parsed = parse_ticket(command.get("text", ""))
        except UsageError as exc:
            return await ack(str(exc))
        await ack()
        await _respond(respond, await flows.run_command(
            lambda s: run_ticket(s, settings, parsed, command["user_id"])))

    @app.command(SlashCommand.help)
    async def help_(ack):
        SLACK_ACTIONS.labels("help").inc()
        await ack(HELP)


def _listen_to_buttons(app: AsyncApp, flows: Flows, incidents: IncidentFlows) -> None:
    @app.action(ActionId.incident_state)
    async def incident_state(ack, body):
        await ack()
        SLACK_ACTIONS.labels("incident_state").inc()
        await incidents.state_button(_click(body))

    @app.action(ActionId.incident_update)
    async def incident_update(ack, body):
        await ack()
        SLACK_ACTIONS.labels("incident_update").inc()
        await incidents.update_button(_click(body))

    @app.action(ActionId.draft_approve)
    async def approve(ack, body):
        await ack()
        SLACK_ACTIONS.labels("approve").inc()
        await flows.approve(_click(body))

    @app.action(ActionId.draft_edit)
    async def edit(ack, body):
        await ack()
        SLACK_ACTIONS.labels("edit").inc()
        await flows.open_modal(_click(body), "edit")

    @app.action(ActionId.draft_reject)
    async def reject(ack, body):
        await ack()
        SLACK_ACTIONS.labels("reject").inc()
        await flows.open_modal(_click(body), "reject")

    @app.action(ActionId.draft_regenerate)
    async def regenerate(ack, body):
        await ack()
        SLACK_ACTIONS.labels("regenerate").inc()
        await flows.open_modal(_click(body), "regenerate")


def _listen_to_modals(app: AsyncApp, flows: Flows) -> None:
    @app.view(CallbackId.draft_edit_submit)
    async def edit_submit(ack, body, view):
        text = _typed(view, EDIT_BODY)
        if not text.strip():
            return await ack(response_action="errors", errors={EDIT_BODY.block_id: "The draft cannot be empty."})
        await ack()
        await flows.edit(body["user"]["id"], int(view["private_metadata"]), text)

    @app.view(CallbackId.draft_reject_submit)
    async def reject_submit(ack, body, view):
        reason = _typed(view, REJECT_REASON)
        if len(reason.strip()) < 3:
            return await ack(response_action="errors",
                             errors={REJECT_REASON.block_id: "Say briefly why (3+ characters)."})
        await ack()
        await flows.reject(body["user"]["id"], int(view["private_metadata"]), reason)

    @app.view(CallbackId.draft_regenerate_submit)
    async def regenerate_submit(ack, body, view):
        instructions = _typed(view, REGENERATE_INSTRUCTIONS, optional=True).strip()
        if len(instructions) > 1000:
            return await ack(response_action="errors",
                             errors={REGENERATE_INSTRUCTIONS.block_id: "Keep it under 1,000 characters."})
        await ack()
        await flows.regenerate(body["user"]["id"], int(view["private_metadata"]), instructions)


def _click(body: dict) -> Click:
    # A missing value becomes "", which the flow answers like any other bad draft id.
    return Click(user=body["user"]["id"], channel=body.get("channel", {}).get("id", ""),
                 value=body["actions"][0].get("value", ""), trigger_id=body.get("trigger_id", ""))


def _typed(view: dict, field: ModalInput, optional: bool = False) -> str:
    """What the user typed into one of the modal's inputs ("" for nothing)."""
    values = view["state"]["values"]
    if optional:  # an optional input may be absent from the submitted state
        return values.get(field.block_id, {}).get(field.action_id, {}).get("value") or ""
    return values[field.block_id][field.action_id].get("value") or ""


async def _respond(respond, text: str) -> None:
    try:
        await respond(text=text, response_type="ephemeral")
    except Exception:  # an unreachable response_url must not fail the listener after its ack
        log.warning("could not respond to a slash command", exc_info=True)
