"""Webhook receivers for tools that cannot write to Kafka: each parses the body with the consumers' own parser
(opsdraft/jsonbody.py) and validates it as they will, answers 4xx with the reason when it is bad, and produces
it unchanged to its topic. A body over the broker's message limit is split (an Alertmanager or Grafana group
into one message per alert, in order, each a valid body of its own) or, when it cannot be, answered 413.
A 202 therefore means the consumers will apply it; a 503 that nothing was lost and the sender should retry."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from consumers import webhook_auth
from consumers.changes import detect_and_parse
from consumers.sources import BY_NAME, read, recognise
from consumers.sources.base import Source
from opsdraft import jsonbody
from opsdraft.bus import Bus, InvalidMessage
from opsdraft.metrics import WEBHOOKS
from opsdraft.receipts import Recorder
from opsdraft.settings import Settings

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024  # what a receiver reads at all; a body under it may still need splitting
_RECORD_OVERHEAD = 1024  # room in a broker message for the record's key (<= 200 bytes), headers and framing
_SPLITTABLE = {"alertmanager", "grafana"}  # one group of alerts: each alert makes a valid body on its own

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


def check(accepts: tuple[Source[Any], ...], data: dict[str, Any]) -> tuple[int, str, Source[Any]]:
    """How many events the body holds, its partition key and its source, or InvalidMessage saying why it is
    refused. A body of an event type we do not use holds 0 events (and has no key: it is not produced)."""
    named, source = accepts[0], recognise(accepts[0].kind, data)
    if source not in accepts:
        if named.detect(data):  # e.g. an 'alerts' list and a PagerDuty event: the consumers take the latter
            raise InvalidMessage(f"also a {source.name} body, and the consumers would read it as that")
        raise InvalidMessage(named.why_not(data) if named.why_not else f"not a {named.name} body")
    parsed = read(source, data)
    count = len(parsed) if isinstance(parsed, list) else 1
    return count, (source.key(data, parsed) if count else ""), source


def parse_object(raw: bytes) -> dict[str, Any]:
    """The body as the consumers will parse it (the same function), or InvalidMessage."""
    try:
        data = jsonbody.loads(raw)
    except jsonbody.JSONBodyError as exc:
        raise InvalidMessage(str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidMessage("the body must be a JSON object")
    return data


def fit(source: Source[Any], data: dict[str, Any], raw: bytes, limit: int) -> list[bytes]:
    """The messages to produce for a valid body: itself when it fits the broker's limit; else, for a group of
    alerts, one body per alert (in the group's order, the envelope repeated with that alert's status); else
    InvalidMessage (a 413)."""
    if len(raw) <= limit:
        return [raw]
    if source.name not in _SPLITTABLE:
        raise InvalidMessage(f"the body is {len(raw):,} bytes, over the broker's limit of {limit:,}")
    parts = [json.dumps({**data, "status": alert.get("status"), "alerts": [alert]}, ensure_ascii=False,
                        separators=(",", ":")).encode() for alert in data["alerts"]]
    too_big = next((i for i, p in enumerate(parts) if len(p) > limit), None)
    if too_big is not None:
        raise InvalidMessage(f"alert {too_big} alone is {len(parts[too_big]):,} bytes, over the broker's limit "
                             f"of {limit:,}")
    return parts


async def produce(bus: Bus, topic: str, values: list[bytes], key: str,
                  headers: dict[str, str] | None = None) -> list[tuple[int, int]]:
    """Produce in order to one partition (one key); returns where each went (partition, offset). Several are queued
    before any is awaited: the producer keeps their order within the partition, and a split group does not wait
    one round trip per alert."""
    hdrs = [(k, v.encode()) for k, v in (headers or {}).items()]
    futures = [await bus.producer.send(topic, v, key=key.encode() if key else None, headers=hdrs) for v in values]
    return [(meta.partition, meta.offset) for meta in await asyncio.gather(*futures)]


async def produce_or_503(bus: Bus, name: str, topic: str, values: list[bytes], key: str,
                         headers: dict[str, str] | None = None, record: Recorder | None = None) -> None:
    """A broker that does not take the message is the sender's cue to retry: 503, counted, never a bare 500.
    With `record` (the embedded broker) a receipt of each message is stored before the 202 (opsdraft/receipts.py);
    a receipt that cannot be stored is a 503 too: a 202 must survive a kill."""
    try:
        sent = await produce(bus, topic, values, key, headers)
        if record is not None:
            await asyncio.to_thread(record, topic, key, headers or {},
                                    [(p, o, v) for (p, o), v in zip(sent, values, strict=True)])
    except Exception as exc:
        WEBHOOKS.labels(name, "error").inc()
        log.warning("webhook %s: producing to %s (or storing its receipt) failed: %s", name, topic, exc)
        raise HTTPException(503, "could not queue the event: retry later (a retry is safe)") from None


def change_receiver(settings: Settings, bus: Bus, record: Recorder | None = None):
    """Changes keep GitHub's event name (a header, not in the body) as a Kafka header, so the consumer parses
    exactly what was checked here. Events we do not use (a ping, a pending deployment) get 202 {"accepted": 0}:
    senders drop or disable webhooks that answer 4xx."""

    async def webhook_changes(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_WEBHOOK_BYTES:
            WEBHOOKS.labels("changes", "rejected").inc()
            raise HTTPException(413, "body larger than 5 MiB")
        await webhook_auth.guard(request, settings, "changes")  # 415/401 before anything is parsed
        github_event = request.headers.get("x-github-event", "")
        headers = {"x-github-event": github_event} if github_event else {}
        try:
            change = detect_and_parse(parse_object(raw), headers)
        except (ValueError, InvalidMessage) as exc:
            WEBHOOKS.labels("changes", "rejected").inc()
            raise HTTPException(400, f"invalid change payload: {exc}") from None
        if change is None:
            WEBHOOKS.labels("changes", "ignored").inc()
            return {"accepted": 0}
        limit = settings.kafka_max_message_bytes - _RECORD_OVERHEAD
        if len(raw) > limit:
            WEBHOOKS.labels("changes", "rejected").inc()
            raise HTTPException(413, f"the body is {len(raw):,} bytes, over the broker's limit of {limit:,}")
        await produce_or_503(bus, "changes", settings.topics.changes, [raw], change.service[:200], headers, record)
        WEBHOOKS.labels("changes", "accepted").inc()
        return {"accepted": 1}

    return webhook_changes


def webhook_router(settings: Settings, bus: Bus, record: Recorder | None = None) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])

    def receiver(name: str, accepts: tuple[Source[Any], ...]):
        async def receive(request: Request) -> dict[str, Any]:
            raw = await request.body()
            if len(raw) > MAX_WEBHOOK_BYTES:
                WEBHOOKS.labels(name, "rejected").inc()
                raise HTTPException(413, "body larger than 5 MiB")
            await webhook_auth.guard(request, settings, name)  # 415/401 before anything is parsed
            try:
                data = parse_object(raw)
                count, key, source = check(accepts, data)
            except (ValueError, InvalidMessage) as exc:  # pydantic and JSON errors are ValueErrors
                WEBHOOKS.labels(name, "rejected").inc()
                raise HTTPException(400, f"invalid {name} payload: {exc}") from None
            if count == 0:  # an event type we do not use (PagerDuty's incident.annotated, ...): nothing to do
                WEBHOOKS.labels(name, "ignored").inc()
                return {"accepted": 0}
            try:
                values = fit(source, data, raw, settings.kafka_max_message_bytes - _RECORD_OVERHEAD)
            except InvalidMessage as exc:
                WEBHOOKS.labels(name, "rejected").inc()
                raise HTTPException(413, str(exc)) from None
            await produce_or_503(bus, name, getattr(settings.topics, accepts[0].kind), values, str(key)[:200],
                                 record=record)
            WEBHOOKS.labels(name, "accepted").inc()
            return {"accepted": count}

        receive.__name__ = f"webhook_{name}"
        return receive

    responses = {400: {"description": "the body is invalid; why"},
                 413: {"description": "the body is over 5 MiB, or over the broker's message limit and cannot be "
                                      "split"},
                 503: {"description": "the broker did not take it: retry (a retry is safe)"}}
    router.add_api_route("/changes", change_receiver(settings, bus, record), methods=["POST"], status_code=202,
                         summary="Receive a deploy or change event (GitHub deployment/deployment_status, Argo CD "
                                 "notification, generic change JSON) and produce it to the changes topic",
                         openapi_extra={"requestBody": {"required": True, "content": {
                             "application/json": {"schema": {"type": "object"}}}}},
                         responses=responses)
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
    for name, accepts in RECEIVERS.items():
        kind = accepts[0].kind
        router.add_api_route(f"/{name}", receiver(name, accepts), methods=["POST"], status_code=202,
                             summary=f"Receive a {name} webhook and produce it to the {kind} topic",
                             openapi_extra=body, responses=responses)
    return router
