"""Webhook receivers for tools that cannot write to Kafka: each validates the body as the consumers will,
answers 4xx with the reason when it is bad, and produces it unchanged to its topic."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from consumers.changes import detect_and_parse
from consumers.sources import BY_NAME, read, recognise
from consumers.sources.base import Source
from opsdraft.bus import Bus, InvalidMessage
from opsdraft.metrics import WEBHOOKS
from opsdraft.settings import Settings

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024

# endpoint -> the sources (consumers/sources/) it takes, all of one kind, which names the topic. A body is
# taken when the registry recognises it as one of them, i.e. exactly when the consumer will parse it as one of
# them; otherwise the first one says what is missing. The partition key (Source.key) keeps one source's events
# (an Alertmanager group, a PagerDuty incident, a ticket) in order on one partition.
RECEIVERS: dict[str, tuple[Source[Any], ...]] = {
    "alertmanager": (BY_NAME["alertmanager"], BY_NAME["grafana"]),  # Grafana's body is Alertmanager's and more
    "grafana": (BY_NAME["grafana"],),
    "pagerduty": (BY_NAME["pagerduty"],),
    "tickets": (BY_NAME["zendesk"], BY_NAME["freshdesk"], BY_NAME["generic_ticket"]),
}


def check(accepts: tuple[Source[Any], ...], data: dict[str, Any]) -> tuple[int, str]:
    """How many events the body holds and its partition key, or InvalidMessage saying why it is refused."""
    named, source = accepts[0], recognise(accepts[0].kind, data)
    if source not in accepts:
        if named.detect(data):  # e.g. an 'alerts' list and a PagerDuty event: the consumers take the latter
            raise InvalidMessage(f"also a {source.name} body, and the consumers would read it as that")
        raise InvalidMessage(named.why_not(data) if named.why_not else f"not a {named.name} body")
    parsed = read(source, data)
    return (len(parsed) if isinstance(parsed, list) else 1), source.key(data, parsed)


def change_receiver(settings: Settings, bus: Bus):
    """Changes keep GitHub's event name (a header, not in the body) as a Kafka header, so the consumer parses
    exactly what was checked here. Events we do not use (a ping, a pending deployment) get 202 {"accepted": 0}:
    senders drop or disable webhooks that answer 4xx."""

    async def webhook_changes(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_WEBHOOK_BYTES:
            WEBHOOKS.labels("changes", "rejected").inc()
            raise HTTPException(413, "body larger than 5 MiB")
        github_event = request.headers.get("x-github-event", "")
        headers = {"x-github-event": github_event} if github_event else {}
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise InvalidMessage("the body must be a JSON object")
            change = detect_and_parse(data, headers)
        except (ValueError, InvalidMessage) as exc:
            WEBHOOKS.labels("changes", "rejected").inc()
            raise HTTPException(400, f"invalid change payload: {exc}") from None
        if change is None:
            WEBHOOKS.labels("changes", "ignored").inc()
            return {"accepted": 0}
        await bus.send(settings.topics.changes, raw, key=change.service[:200], headers=headers)
        WEBHOOKS.labels("changes", "accepted").inc()
        return {"accepted": 1}

    return webhook_changes


def webhook_router(settings: Settings, bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])

    def receiver(name: str, accepts: tuple[Source[Any], ...]):
        async def receive(request: Request) -> dict[str, Any]:
            raw = await request.body()
            if len(raw) > MAX_WEBHOOK_BYTES:
                WEBHOOKS.labels(name, "rejected").inc()
                raise HTTPException(413, "body larger than 5 MiB")
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise InvalidMessage("the body must be a JSON object")
                count, key = check(accepts, data)
            except (ValueError, InvalidMessage) as exc:  # pydantic and JSON errors are ValueErrors
                WEBHOOKS.labels(name, "rejected").inc()
                raise HTTPException(400, f"invalid {name} payload: {exc}") from None
            await bus.send(getattr(settings.topics, accepts[0].kind), raw, key=str(key)[:200])
            WEBHOOKS.labels(name, "accepted").inc()
            return {"accepted": count}

        receive.__name__ = f"webhook_{name}"
        return receive

    router.add_api_route("/changes", change_receiver(settings, bus), methods=["POST"], status_code=202,
                         summary="Receive a deploy or change event (GitHub deployment/deployment_status, Argo CD "
                                 "notification, generic change JSON) and produce it to the changes topic",
                         openapi_extra={"requestBody": {"required": True, "content": {
                             "application/json": {"schema": {"type": "object"}}}}},
                         responses={400: {"description": "the body is invalid; why"},
                                    413: {"description": "the body is over 5 MiB"}})
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
    for name, accepts in RECEIVERS.items():
        kind = accepts[0].kind
        router.add_api_route(f"/{name}", receiver(name, accepts), methods=["POST"], status_code=202,
                             summary=f"Receive a {name} webhook and produce it to the {kind} topic",
                             openapi_extra=body, responses={400: {"description": "the body is invalid; why"},
                                                            413: {"description": "the body is over 5 MiB"}})
    return router
