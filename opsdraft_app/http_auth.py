"""Checks at the HTTP edge that do not belong to a receiver: Slack's request headers before Bolt sees the
request, and the bearer token of /metrics."""

from __future__ import annotations

import hmac
import logging

from fastapi import HTTPException, Request
from slack_sdk.signature import SignatureVerifier

from opsdraft.settings import Settings


class _NoBodies(logging.Filter):
    """Bolt logs a refused request's whole URL-encoded body (with %40-encoded emails that a log redactor looking
    for "@" misses). Requests that fail the signature check are refused below, before Bolt; should one still
    fail Bolt's own check (a timestamp crossing the 5-minute edge in between), its record loses the body. A
    filter rather than a level: Bolt resets its loggers' levels to the root's when it builds an app."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = "Invalid request signature detected (request not logged)", ()
        return True


for _name in ("slack_bolt.AsyncRequestVerification", "slack_bolt.RequestVerification"):
    logging.getLogger(_name).addFilter(_NoBodies())


async def verify_slack(request: Request, verifier: SignatureVerifier) -> None:
    """401 unless the request has a well-formed, fresh and valid Slack signature. Slack's SDK raises on a
    non-numeric X-Slack-Request-Timestamp (a 500); here it is a 401 like any other bad signature."""
    timestamp = request.headers.get("x-slack-request-timestamp", "").strip()
    signature = request.headers.get("x-slack-signature", "").strip()
    if not timestamp or not signature:
        raise HTTPException(401, "missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise HTTPException(401, "X-Slack-Request-Timestamp must be Unix seconds")
    if not verifier.is_valid(await request.body(), timestamp, signature):
        raise HTTPException(401, "invalid or stale Slack signature")


def verify_metrics(request: Request, settings: Settings) -> None:
    """/metrics needs `Authorization: Bearer <OPSDRAFT_METRICS_TOKEN>`; without a token it is open only in a
    development run (OPSDRAFT_INSECURE_DEV), where `opsdraft run` warned about it."""
    token = settings.metrics_token.strip()
    if not token:
        if settings.insecure_dev:
            return
        raise HTTPException(401, "set OPSDRAFT_METRICS_TOKEN and scrape with it as a bearer token")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
