"""Webhook authentication, each sender the way it signs or authenticates, checked on the raw body before it is
parsed. Every comparison is constant-time (hmac.compare_digest) and every configured secret is tried, so two
are valid at once while one is rotated. A refused request produces nothing: 415 for a body that is not
declared JSON (what stops a cross-site form post), 401 for missing, wrong or stale credentials."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable
from datetime import datetime

from fastapi import HTTPException, Request

from opsdraft.metrics import WEBHOOKS
from opsdraft.security import RECEIVER_SECRETS, env_name, receiver_secrets
from opsdraft.settings import Settings


class Unauthorized(Exception):
    """Why a request is refused: said in the 401 (it names headers and settings, never a secret)."""


def _equal(a: str | bytes, b: str | bytes) -> bool:
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a, b)


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _any(candidates: Iterable[bool]) -> bool:
    # Not any(): every secret is compared, so the time taken does not say which one came close.
    result = False
    for ok in candidates:
        result |= ok
    return result


def authorization(request: Request, secrets: list[str]) -> bool:
    """`Authorization: Bearer <token>` (Alertmanager's http_config.authorization, Grafana's header, curl) or
    `Basic base64(user:password)` (Alertmanager's basic_auth, Grafana's basic authentication)."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    value = value.strip()
    if not value:
        return False
    if scheme.lower() == "bearer":
        return _any(_equal(value, s) for s in secrets)
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return _any(_equal(pair, s.encode()) for s in secrets if ":" in s)
    return False


def _fresh(timestamp: str, max_age_s: float, header: str) -> None:
    """A timestamp in Unix seconds or ISO 8601 (Zendesk sends 2026-12-03T12:00:00Z), within max_age of now."""
    try:
        at = float(timestamp) if timestamp.strip().lstrip("-").isdigit() else \
            datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise Unauthorized(f"{header} is not a timestamp") from None
    if abs(time.time() - at) > max_age_s:
        raise Unauthorized(f"{header} is more than {max_age_s:g} s from now (stale or replayed)")


def grafana(request: Request, raw: bytes, settings: Settings, secrets: list[str]) -> bool:
    """Grafana's HMAC signature: hex HMAC-SHA256 of the body, or of "<timestamp>:<body>" when a timestamp
    header is configured (both header names as configured in the contact point); else bearer or basic."""
    signature = request.headers.get(settings.webhook_grafana_signature_header)
    if signature is None:
        return authorization(request, secrets)
    message = raw
    if ts_header := settings.webhook_grafana_timestamp_header:
        timestamp = request.headers.get(ts_header)
        if timestamp is None:
            raise Unauthorized(f"{ts_header} is missing")
        _fresh(timestamp, settings.webhook_max_age_s, ts_header)
        message = timestamp.encode() + b":" + raw
    return _any(_equal(signature.strip().lower(), _hmac(s, message).hex()) for s in secrets)


def pagerduty(request: Request, raw: bytes, secrets: list[str]) -> bool:
    """PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, one per signing secret during a rotation;
    any entry may match any of our secrets."""
    header = request.headers.get("x-pagerduty-signature", "")
    given = [e.strip()[3:] for e in header.split(",") if e.strip().startswith("v1=")]
    expected = [_hmac(s, raw).hex() for s in secrets]
    return _any(_equal(g.lower(), e) for g in given for e in expected)


def zendesk(request: Request, raw: bytes, settings: Settings) -> bool:
    """Zendesk: `X-Zendesk-Webhook-Signature` is base64(HMAC-SHA256(timestamp + body)), the timestamp in
    `X-Zendesk-Webhook-Signature-Timestamp`, which must be recent (a captured request cannot be replayed later)."""
    timestamp = request.headers.get("x-zendesk-webhook-signature-timestamp")
    if timestamp is None:
        raise Unauthorized("X-Zendesk-Webhook-Signature-Timestamp is missing")
    _fresh(timestamp, settings.webhook_max_age_s, "X-Zendesk-Webhook-Signature-Timestamp")
    signature = request.headers.get("x-zendesk-webhook-signature", "").strip()
    message = timestamp.encode() + raw
    return _any(_equal(signature, base64.b64encode(_hmac(s, message))) for s in settings.webhook_zendesk_secrets)


def github(request: Request, raw: bytes, secrets: list[str]) -> bool:
    """GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with the webhook's secret."""
    header = request.headers.get("x-hub-signature-256", "").strip()
    if not header.startswith("sha256="):
        return False
    return _any(_equal(header[7:].lower(), _hmac(s, raw).hex()) for s in secrets)


def verify(request: Request, raw: bytes, receiver: str, settings: Settings) -> None:
    """Raise Unauthorized unless the request carries a valid credential for `receiver`."""
    secrets = receiver_secrets(settings, receiver)
    if not secrets:
        if settings.insecure_dev:
            return  # a development run said so, and `opsdraft run` warned about it
        names = " or ".join(env_name(f) for f in RECEIVER_SECRETS[receiver])
        raise Unauthorized(f"no credential is configured for this receiver ({names})")
    ok = False
    if receiver == "grafana":
        ok = grafana(request, raw, settings, secrets)
    elif receiver == "pagerduty":
        ok = pagerduty(request, raw, settings.webhook_pagerduty_secrets)
    elif receiver == "tickets" and "x-zendesk-webhook-signature" in request.headers:
        ok = zendesk(request, raw, settings)
    elif receiver == "changes" and "x-hub-signature-256" in request.headers:
        ok = github(request, raw, settings.webhook_changes_secrets)
    elif receiver == "tickets":
        ok = authorization(request, settings.webhook_tickets_secrets)
    else:
        ok = authorization(request, secrets)
    if not ok:
        raise Unauthorized("missing or invalid credentials")


async def guard(request: Request, settings: Settings, receiver: str) -> None:
    """The first thing each receiver does: 415 unless the body is declared JSON, 401 unless authenticated.
    Reads the raw body (Starlette keeps it for the receiver) and counts refusals in opsdraft_webhooks_total."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        WEBHOOKS.labels(receiver, "unsupported_media_type").inc()
        raise HTTPException(415, "Content-Type must be application/json")
    raw = await request.body()
    try:
        verify(request, raw, receiver, settings)
    except Unauthorized as exc:
        WEBHOOKS.labels(receiver, "unauthorized").inc()
        raise HTTPException(401, f"unauthorized: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None
