"""Who may approve, edit, reject or regenerate a draft: Slack user ids and user groups, per draft kind."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from opsdraft.settings import Settings

log = logging.getLogger(__name__)
GROUP_TTL_S = 60.0  # group membership changes rarely; one lookup a minute keeps clicks fast


def _ids(value: str) -> set[str]:
    return {i.strip() for i in value.split(",") if i.strip()}


class Approvers:
    def __init__(self, settings: Settings, client: AsyncWebClient):
        self.settings, self.client = settings, client
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def configured(self, kind: str) -> set[str]:
        """The kind's own list when set, else OPSDRAFT_SLACK_APPROVERS; empty means anyone."""
        return _ids(getattr(self.settings, f"slack_approvers_{kind}", "")) or _ids(self.settings.slack_approvers)

    async def allows(self, user: str, kind: str) -> bool:
        ids = self.configured(kind)
        if not ids or user in ids:
            return True
        for group in sorted(i for i in ids if i.startswith("S")):
            if user in await self.members(group):
                return True
        return False

    async def members(self, group: str) -> frozenset[str]:
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_TTL_S:
            return cached[1]
        try:
            resp = await self.client.usergroups_users_list(usergroup=group)
            users = frozenset(resp.get("users") or [])
        except SlackApiError as exc:
            # Fail closed: an unknown or unreadable group grants nobody anything.
            log.warning("could not read user group %s: %s", group, exc.response.get("error"))
            return frozenset()
        self._groups[group] = (time.monotonic(), users)
        return users
