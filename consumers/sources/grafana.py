"""Grafana alerting's webhook: Alertmanager's body plus orgId, title, state, message… The one place that
tells it from Alertmanager's (orgId), for the consumers and the /webhooks/grafana receiver alike."""

from __future__ import annotations

from typing import Any

from consumers.sources import alertmanager
from consumers.sources.base import AlertEvent, Source, validate


def detect(data: dict[str, Any]) -> bool:
    return "orgId" in data and alertmanager.detect(data)


def parse(data: Any) -> list[AlertEvent]:
    return validate(alertmanager.AlertmanagerWebhook, data).events(source="grafana")


def why_not(data: dict[str, Any]) -> str:
    return alertmanager.why_not(data) if "orgId" in data else "not a Grafana alerting webhook: no 'orgId'"


SOURCE = Source("grafana", "alerts", detect, parse, alertmanager.key, why_not)
