"""Webhook receivers for tools that cannot write to Kafka: each validates the body as the consumers will,
answers 4xx with the reason when it is bad, and produces it unchanged to its topic."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from consumers.payloads import parse_alerts, parse_ticket
from consumers.vendors import is_pagerduty
from opsdraft.bus import Bus, InvalidMessage
from opsdraft.metrics import WEBHOOKS
from opsdraft.settings import Settings

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def _alertmanager(data: dict) -> tuple[int, str]:
    if "alerts" not in data:
        raise InvalidMessage("no 'alerts' list")
    alerts = parse_alerts(data)
    return len(alerts), data.get("groupKey") or alerts[0].fingerprint


def _grafana(data: dict) -> tuple[int, str]:
    if "orgId" not in data:
        raise InvalidMessage("not a Grafana alerting webhook: no 'orgId'")
    return _alertmanager(data)


def _pagerduty(data: dict) -> tuple[int, str]:
    if not is_pagerduty(data):
        raise InvalidMessage("not a PagerDuty v3 webhook: no 'event.event_type'")
    events = parse_alerts(data)
    return len(events), f"pagerduty:{data['event'].get('data', {}).get('id', '')}"


def _tickets(data: dict) -> tuple[int, str]:
    return 1, parse_ticket(data).id


# name -> (topic attribute, validator returning (count, partition key)); the key keeps one source's
# events (an Alertmanager group, a PagerDuty incident, a ticket) in order on one partition.
RECEIVERS: dict[str, tuple[str, Callable[[dict], tuple[int, str]]]] = {
    "alertmanager": ("alerts", _alertmanager),
    "grafana": ("alerts", _grafana),
    "pagerduty": ("alerts", _pagerduty),
    "tickets": ("tickets", _tickets),
}


def webhook_router(settings: Settings, bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])

    def receiver(name: str, topic_attr: str, validate):
        async def receive(request: Request) -> dict[str, Any]:
            raw = await request.body()
            if len(raw) > MAX_WEBHOOK_BYTES:
                WEBHOOKS.labels(name, "rejected").inc()
                raise HTTPException(413, "body larger than 5 MiB")
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise InvalidMessage("the body must be a JSON object")
                count, key = validate(data)
            except (ValueError, InvalidMessage) as exc:  # pydantic and JSON errors are ValueErrors
                WEBHOOKS.labels(name, "rejected").inc()
                raise HTTPException(400, f"invalid {name} payload: {exc}") from None
            await bus.send(getattr(settings.topics, topic_attr), raw, key=str(key)[:200])
            WEBHOOKS.labels(name, "accepted").inc()
            return {"accepted": count}

        receive.__name__ = f"webhook_{name}"
        return receive

    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
    for name, (topic_attr, validate) in RECEIVERS.items():
        router.add_api_route(f"/{name}", receiver(name, topic_attr, validate), methods=["POST"], status_code=202,
                             summary=f"Receive a {name} webhook and produce it to the {topic_attr} topic",
                             openapi_extra=body, responses={400: {"description": "the body is invalid; why"},
                                                            413: {"description": "the body is over 5 MiB"}})
    return router
