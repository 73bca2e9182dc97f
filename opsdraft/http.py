"""The HTTP surface: Slack events, the Alertmanager webhook receiver, health and metrics."""

from __future__ import annotations

import json

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from consumers.payloads import parse_alerts
from opsdraft.bus import Bus, InvalidMessage
from opsdraft.metrics import WEBHOOKS
from opsdraft.settings import Settings

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def build_http(settings: Settings, bus: Bus, slack_app: AsyncApp | None) -> FastAPI:
    api = FastAPI(title="opsdraft", version="0.1.0")
    handler = AsyncSlackRequestHandler(slack_app) if slack_app else None
    verifier = SignatureVerifier(settings.slack_signing_secret)

    @api.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @api.post("/webhooks/alertmanager", status_code=202)
    async def alertmanager(request: Request) -> dict:
        """Alertmanager cannot write to Kafka: validate its webhook here and produce it to the alerts topic."""
        raw = await request.body()
        if len(raw) > MAX_WEBHOOK_BYTES:
            WEBHOOKS.labels("alertmanager", "rejected").inc()
            raise HTTPException(413, "body larger than 5 MiB")
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or "alerts" not in data:
                raise InvalidMessage("not an Alertmanager webhook: no 'alerts' list")
            alerts = parse_alerts(data)
        except (ValueError, InvalidMessage) as exc:
            WEBHOOKS.labels("alertmanager", "rejected").inc()
            raise HTTPException(400, f"invalid Alertmanager payload: {exc}") from None
        key = data.get("groupKey") or alerts[0].fingerprint
        await bus.send(settings.topics.alerts, raw, key=key[:200])
        WEBHOOKS.labels("alertmanager", "accepted").inc()
        return {"accepted": len(alerts)}

    @api.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        if handler is None:
            raise HTTPException(404, "the bot role is not running in this process")
        if request.headers.get("x-slack-retry-num"):
            if not verifier.is_valid_request(await request.body(), dict(request.headers)):
                raise HTTPException(401, "invalid Slack signature")
            # We ack every request within 3 s, so a retry means Slack lost our answer, not our work:
            # processing it again would duplicate the work. Answer it without running listeners.
            return Response(status_code=200, headers={"X-Slack-No-Retry": "1"})
        return await handler.handle(request)

    return api
