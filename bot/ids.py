"""Every id Slack sends back to the bot: slash commands, button action ids, modal callback ids and the ids of
modal inputs. blocks.py puts them into messages and modals, app.py listens for them, so both take them from
here. The string values are part of the contract with Slack, the app manifest, the demo and the tests: a
message posted before a deploy still carries the old ids when it is clicked after it, so never rename one."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class SlashCommand(StrEnum):
    """As installed by slack-app-manifest.yml."""

    incident = "/incident"
    ticket = "/ticket"
    help = "/opsdraft"


class ActionId(StrEnum):
    """The buttons under a pending draft."""

    draft_approve = "draft_approve"
    draft_edit = "draft_edit"
    draft_reject = "draft_reject"
    draft_regenerate = "draft_regenerate"
    # On an incident channel's pinned summary (bot/channels.py): set the stated status, draft a status update.
    incident_state = "incident_state"
    incident_update = "incident_update"


class CallbackId(StrEnum):
    """The modals those buttons open; a submission comes back under the modal's callback id."""

    draft_edit_submit = "draft_edit_submit"
    draft_reject_submit = "draft_reject_submit"
    draft_regenerate_submit = "draft_regenerate_submit"


class ModalInput(NamedTuple):
    """One text input of a modal. A submission keys its values by block id, then action id; the errors a
    listener answers with are keyed by block id."""

    block_id: str
    action_id: str


EDIT_BODY = ModalInput("body", "body_input")
REJECT_REASON = ModalInput("reason", "reason_input")
REGENERATE_INSTRUCTIONS = ModalInput("instructions", "instructions_input")
