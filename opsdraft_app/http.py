"""The HTTP surface: Slack events, webhook receivers (consumers/webhooks.py), health and metrics."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from consumers.webhooks import webhook_router
from opsdraft.bus import Bus
from opsdraft.settings import Settings


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

    api.include_router(webhook_router(settings, bus))

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
