"""Which settings leave opsdraft open to anyone who can reach it: `opsdraft check` lists them and `opsdraft run`
refuses to start with them (unless OPSDRAFT_INSECURE_DEV=true says this is a development run)."""

from __future__ import annotations

from opsdraft.settings import Settings

# The values the settings shipped with (and an older README printed): known to everybody, so no secret.
PLACEHOLDERS = frozenset({"xoxb-opsdraft-local", "opsdraft-local-signing-secret"})

# Webhook receiver -> the settings whose credentials it accepts (consumers/webhook_auth.py checks them).
RECEIVER_SECRETS: dict[str, tuple[str, ...]] = {
    "alertmanager": ("webhook_alertmanager_secrets",),
    "grafana": ("webhook_grafana_secrets",),
    "pagerduty": ("webhook_pagerduty_secrets",),
    "tickets": ("webhook_tickets_secrets", "webhook_zendesk_secrets"),
    "changes": ("webhook_changes_secrets",),
}


def env_name(field: str) -> str:
    return "OPSDRAFT_" + field.upper()


def receiver_secrets(settings: Settings, receiver: str) -> list[str]:
    """Every credential configured for one receiver (empty entries are not credentials)."""
    return [s for field in RECEIVER_SECRETS[receiver] for s in getattr(settings, field) if s.strip()]


def insecure_settings(settings: Settings, roles: set[str] | None = None) -> list[str]:
    """One line per insecure setting, naming its variable and the fix. `roles`: only what those roles expose
    (a consumers-only process has no HTTP surface and posts nothing to Slack); None: everything."""
    roles = {"consumers", "summarizer", "bot", "http"} if roles is None else roles
    found = []
    if settings.insecure_dev:
        found.append(f"{env_name('insecure_dev')} is true: every check below is only a warning; "
                     f"never set it where anyone else can reach this process")
    if roles & {"bot", "http"}:
        for field, what in (("slack_signing_secret", "Basic Information → Signing Secret"),
                            ("slack_bot_token", "OAuth & Permissions → Bot User OAuth Token")):
            value = getattr(settings, field)
            if not value.strip() or value in PLACEHOLDERS:
                state = "is empty" if not value.strip() else "is the public placeholder"
                found.append(f"{env_name(field)} {state}: set it to your Slack app's {what}")
    if "http" in roles:
        for receiver, fields in RECEIVER_SECRETS.items():
            if not receiver_secrets(settings, receiver):
                names = " or ".join(env_name(f) for f in fields)
                found.append(f"/webhooks/{receiver} accepts no credential: set {names} "
                             f"(a JSON list, e.g. '[\"<random secret>\"]')")
        if not settings.metrics_token.strip():
            found.append(f"{env_name('metrics_token')} is empty: /metrics is refused until it is set "
                         f"(Prometheus sends it as a bearer token)")
    return found


def refusal(settings: Settings, roles: set[str]) -> str | None:
    """The one line `opsdraft run` exits with, or None when it may start."""
    found = insecure_settings(settings, roles)
    if not found or settings.insecure_dev:
        return None
    names = sorted({w for line in found for w in line.split() if w.startswith("OPSDRAFT_")})
    return (f"refusing to start with insecure settings: {', '.join(names)}; set them (see `opsdraft check` and "
            f"README \"Security\"), or OPSDRAFT_INSECURE_DEV=true for a development run")
