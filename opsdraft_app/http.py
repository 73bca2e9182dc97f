"""The HTTP surface: Slack events, webhook receivers (consumers/webhooks.py), health and metrics."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from consumers.webhooks import webhook_router
from opsdraft.bus import Bus
from opsdraft.metrics import HTTP_5XX
from opsdraft.receipts import Recorder
from opsdraft.settings import Settings
from opsdraft_app.http_auth import verify_metrics, verify_slack
from opsdraft_app.supervisor import Health


def _route(request: Request) -> str:
    """The route's template (bounded label values), not the requested path."""
    route = request.scope.get("route")
    return getattr(route, "path", "other")


def build_http(settings: Settings, bus: Bus, slack_app: AsyncApp | None, health: Health | None = None,
               record: Recorder | None = None) -> FastAPI:
    api = FastAPI(title="opsdraft", version="0.1.0")
    handler = AsyncSlackRequestHandler(slack_app) if slack_app else None
    verifier = SignatureVerifier(settings.slack_signing_secret)

    @api.middleware("http")
    async def count_5xx(request: Request, call_next):
        # Every 5xx is counted, raised or answered: a sender that retries on them hides them otherwise.
        try:
            response = await call_next(request)
        except Exception:
            HTTP_5XX.labels(_route(request)).inc()
            raise
        if response.status_code >= 500:
            HTTP_5XX.labels(_route(request)).inc()
        return response

    @api.get("/healthz")
    async def healthz() -> Response:
        # 503 while a role waits to be started again (opsdraft_app/supervisor.py), so a load balancer or an
        # orchestrator sees it; the body says which role and why.
        report = health.report() if health else {"status": "ok", "roles": {}}
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    @api.get("/metrics")
    async def metrics(request: Request) -> Response:
        verify_metrics(request, settings)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    api.include_router(webhook_router(settings, bus, record))

    @api.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        if handler is None:
            raise HTTPException(404, "the bot role is not running in this process")
        await verify_slack(request, verifier)  # 401 for bad headers; Bolt never sees (nor logs) a refused body
        if request.headers.get("x-slack-retry-num"):
            if not verifier.is_valid_request(await request.body(), dict(request.headers)):
                raise HTTPException(401, "invalid Slack signature")
            # We ack every request within 3 s, so a retry means Slack lost our answer, not our work:
            # processing it again would duplicate the work. Answer it without running listeners.
            return Response(status_code=200, headers={"X-Slack-No-Retry": "1"})
        return await handler.handle(request)

    return api
