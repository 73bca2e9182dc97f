"""Change events: GitHub deployment webhooks, Argo CD notifications, the generic change JSON, and change-like log
lines (consumers/changes.py, consumers/change_rules.py). Sample bodies are in tests/data/changes/."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from consumers import change_rules, changes
from consumers.change_rules import RULES, change_from_log, describe_rules, version_of
from consumers.changes import (
    ChangeEvent,
    InvalidChange,
    detect_and_parse,
    image_tag,
    parse_argocd,
    parse_generic,
    parse_github,
)
from opsdraft.bus import InvalidMessage

DATA = Path(__file__).parent / "data" / "changes"
AT = datetime(2026, 11, 20, 14, 2, 5, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


# --- the model ---------------------------------------------------------------------------------------------------

def test_change_event_naive_time_is_utc_and_extra_fields_are_ignored():
    ev = ChangeEvent(service="checkout", kind="deploy", action="rollback", at=datetime(2026, 11, 20, 14),
                     source="generic", whatever="x")
    assert ev.at == datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert not hasattr(ev, "whatever")
    assert (ev.version, ev.actor, ev.description, ev.id, ev.environment, ev.status) == ("", "", "", "", "", "")


@pytest.mark.parametrize("field, value", [
    ("service", ""), ("service", "x" * 201), ("kind", "database"), ("action", "explode"), ("source", "jenkins"),
    ("description", "x" * 2001), ("status", "maybe"), ("at", "not a time"), ("at", "9999-01-01T00:00:00Z"),
])
def test_change_event_validates_at_the_edge(field, value):
    fields = dict(service="checkout", kind="deploy", action="deploy", at=AT, source="log") | {field: value}
    with pytest.raises(ValueError):
        ChangeEvent(**fields)


# --- GitHub ------------------------------------------------------------------------------------------------------

def status_event(state: str = "success", **deployment) -> dict:
    body = load("github_deployment_status.json")
    body["deployment_status"]["state"] = state
    body["deployment"].update(deployment)
    return body


def test_github_deployment_status_success():
    ev = detect_and_parse(status_event(), {"X-GitHub-Event": "deployment_status"})
    assert ev is not None
    assert (ev.service, ev.version, ev.kind, ev.action, ev.status, ev.source) == (
        "checkout", "v2.4.0", "deploy", "deploy", "success", "github")
    assert ev.at == datetime(2026, 11, 20, 13, 58, 41, tzinfo=UTC)
    assert ev.environment == "production"
    assert ev.actor == "mona-deployer"  # a person rather than the github-actions[bot] that posted the status
    assert ev.id == "github:acme/checkout:deployment:1436917218:status:2766431561"
    assert "acme/checkout v2.4.0@9f3c2d1" in ev.description and "Deployment finished successfully." in ev.description


@pytest.mark.parametrize("state, status", [("failure", "failure"), ("error", "failure"),
                                           ("in_progress", "in_progress"), ("SUCCESS", "success")])
def test_github_deployment_status_states(state, status):
    ev = parse_github("deployment_status", status_event(state))
    assert ev is not None and ev.status == status and ev.action == "deploy"


@pytest.mark.parametrize("state", ["pending", "queued", "waiting", "inactive", "some_new_state"])
def test_github_states_that_change_nothing_are_none(state):
    assert detect_and_parse(status_event(state), {"x-github-event": "deployment_status"}) is None


@pytest.mark.parametrize("event", ["ping", "push", "workflow_run", "check_suite"])
def test_other_github_events_are_none(event):
    ping = {"zen": "Design for failure.", "hook_id": 482133, "hook": {"type": "Repository", "events": ["*"]}}
    assert detect_and_parse(ping, {"X-GitHub-Event": event}) is None


def test_github_deployment_event():
    ev = detect_and_parse(load("github_deployment.json"), {"X-GitHub-Event": "deployment"})
    assert ev is not None
    # payload.service (here a JSON string, as the REST API allows) names the service; ref main is no tag: short sha
    assert (ev.service, ev.version, ev.action, ev.status, ev.actor, ev.environment) == (
        "payments", "a1b2c3d", "deploy", "", "hubot", "staging")
    assert ev.at == datetime(2026, 11, 20, 14, 1, 9, tzinfo=UTC)
    assert ev.id == "github:acme/payments-api:deployment:1436920001"


def test_github_detected_by_shape_without_the_header():
    ev = detect_and_parse(status_event("failure"))
    assert ev is not None and ev.source == "github" and ev.status == "failure"
    body = load("github_deployment.json")
    ev = detect_and_parse(body)
    assert ev is not None and ev.id.endswith(":deployment:1436920001")


@pytest.mark.parametrize("changes_to, version, action", [
    (dict(ref="refs/tags/2024.11.3"), "2024.11.3", "deploy"),
    (dict(ref="release-train"), "9f3c2d1", "deploy"),
    (dict(ref="9f3c2d1e8b7a6f5e4d3c2b1a09f8e7d6c5b4a321"), "9f3c2d1", "deploy"),
    (dict(ref="v2.3.0", task="deploy:rollback"), "v2.3.0", "rollback"),
    (dict(description="Roll back to v2.3.0 after elevated 5xx"), "v2.4.0", "rollback"),
    (dict(description="Revert checkout to last good build"), "v2.4.0", "rollback"),
    (dict(payload={"service": "checkout-worker", "version": "2.4.0-rc.1"}), "2.4.0-rc.1", "deploy"),
])
def test_github_version_and_rollback(changes_to, version, action):
    ev = parse_github("deployment_status", status_event(**changes_to))
    assert ev is not None and (ev.version, ev.action) == (version, action)
    if "payload" in changes_to:
        assert ev.service == "checkout-worker"


@pytest.mark.parametrize("mutate, missing", [
    (lambda b: b.pop("repository"), "repository"),
    (lambda b: b.pop("deployment"), "deployment"),
    (lambda b: b.pop("deployment_status"), "deployment_status"),
    (lambda b: b["deployment_status"].pop("state"), "deployment_status.state"),
    (lambda b: [b["deployment_status"].pop(k) for k in ("created_at", "updated_at")]
     + [b["deployment"].pop("created_at")], "created_at"),
])
def test_github_bodies_missing_what_we_need(mutate, missing):
    body = status_event()
    mutate(body)
    with pytest.raises(InvalidChange, match=missing):
        detect_and_parse(body, {"X-GitHub-Event": "deployment_status"})


def test_github_non_object_body():
    with pytest.raises(InvalidChange, match="JSON object"):
        detect_and_parse([1, 2], {"X-GitHub-Event": "deployment"})


# --- Argo CD -----------------------------------------------------------------------------------------------------

def test_argocd_on_deployed():
    ev = detect_and_parse(load("argocd_on_deployed.json"))
    assert ev is not None
    assert (ev.service, ev.version, ev.kind, ev.action, ev.status, ev.source) == (
        "checkout", "2.4.0", "deploy", "deploy", "success", "argocd")
    assert ev.at == datetime(2026, 11, 20, 13, 57, 48, tzinfo=UTC)
    assert ev.actor == "argocd (automated)"  # initiatedBy rendered "<no value>" for an automated sync
    assert ev.environment == "production"
    assert "health Healthy" in ev.description and "successfully synced" in ev.description
    assert ev.id.startswith("argocd:checkout:4e1f0a9c")


@pytest.mark.parametrize("changes_to, version, status", [
    (dict(images="[registry.acme.example:5000/shop/checkout:2.4.1 envoyproxy/envoy:v1.31.2]"), "2.4.1", "success"),
    (dict(images=None), "4e1f0a9", "success"),
    (dict(images="<no value>", revision="1.8.2"), "1.8.2", "success"),
    (dict(images=["ghcr.io/acme/checkout@sha256:" + "ab" * 32]), "sha256:abababababab", "success"),
    (dict(healthStatus="Degraded"), "2.4.0", "failure"),
    (dict(operationPhase="Failed", healthStatus="Missing"), "2.4.0", "failure"),
    (dict(operationPhase="Error"), "2.4.0", "failure"),
    (dict(operationPhase="Running", finishedAt="<no value>", healthStatus="Progressing"), "2.4.0", "in_progress"),
    (dict(operationPhase="<no value>", healthStatus="Healthy"), "2.4.0", "success"),
])
def test_argocd_versions_and_status(changes_to, version, status):
    body = load("argocd_on_deployed.json") | changes_to
    ev = parse_argocd(body)
    assert (ev.version, ev.status) == (version, status)
    if changes_to.get("finishedAt") == "<no value>":
        assert ev.at == datetime(2026, 11, 20, 13, 57, 2, tzinfo=UTC)  # startedAt


def test_argocd_manual_sync_names_the_user_and_namespace_stands_in_for_environment():
    assert parse_argocd(load("argocd_on_deployed.json") | {"automated": True}).actor == "argocd (automated)"
    body = load("argocd_on_deployed.json") | {"initiatedBy": "<PERSON_1>", "automated": "false"}
    del body["environment"]
    ev = parse_argocd(body)
    assert (ev.actor, ev.environment) == ("<PERSON_1>", "checkout-prod")


@pytest.mark.parametrize("drop, missing", [(("app",), "app"), (("finishedAt", "startedAt"), "finishedAt")])
def test_argocd_missing_fields(drop, missing):
    body = load("argocd_on_deployed.json")
    for k in drop:
        body[k] = "<no value>"
    with pytest.raises(InvalidChange, match=missing):
        detect_and_parse(body)


# --- generic -----------------------------------------------------------------------------------------------------

def test_generic_change():
    ev = detect_and_parse(load("generic.json"))
    assert ev is not None
    assert (ev.service, ev.version, ev.kind, ev.action, ev.actor, ev.id, ev.environment, ev.source) == (
        "checkout", "2.4.0", "deploy", "deploy", "ci@acme.example", "spinnaker-412", "production", "generic")
    assert ev.at == datetime(2026, 11, 20, 12, 58, tzinfo=UTC)  # +01:00 as UTC


@pytest.mark.parametrize("kind, action", [("deploy", "deploy"), ("config", "config-reload"),
                                          ("feature-flag", "feature-flag"), ("infra", "other")])
def test_generic_action_defaults_by_kind(kind, action):
    ev = parse_generic({"service": "edge", "kind": kind, "at": "2026-11-20T14:00:00"})
    assert ev.action == action and ev.at.tzinfo == UTC


def test_generic_explicit_action_status_and_numeric_id():
    ev = parse_generic(load("generic.json") | {"action": "rollback", "status": "failed", "id": 412})
    assert (ev.action, ev.status, ev.id) == ("rollback", "failure", "412")


@pytest.mark.parametrize("body, words", [
    ({"service": "checkout", "kind": "deploy"}, "at"),
    ({"kind": "deploy", "at": "2026-11-20T14:00:00Z"}, "service"),
    ({"service": "checkout", "kind": "database", "at": "2026-11-20T14:00:00Z"}, "kind"),
    ({"service": "checkout", "kind": "deploy", "at": "2026-11-20T14:00:00Z", "action": "yolo"}, "action"),
    ({"service": "checkout", "kind": "deploy", "at": "2026-11-20T14:00:00Z", "verison": "1.2"}, "verison"),
    ({"service": "checkout", "kind": "deploy", "at": "2026-11-20T14:00:00Z", "description": "x" * 2001},
     "description"),
    ({"service": "checkout", "kind": "deploy", "at": "yesterday"}, "at"),
    ({"service": "checkout", "kind": "deploy", "at": "2026-11-20T14:00:00Z", "model": "x"}, "model"),
])
def test_invalid_generic_bodies_name_the_field(body, words):
    with pytest.raises(InvalidChange, match=words):
        detect_and_parse(body)


@pytest.mark.parametrize("body", [{}, {"foo": 1}, {"alerts": [], "status": "firing"}, {"app": "checkout"}])
def test_bodies_that_fit_no_sender(body):
    with pytest.raises(InvalidChange, match="not a change") as exc:
        detect_and_parse(body)
    assert "GitHub" in str(exc.value) and "Argo CD" in str(exc.value) and "service" in str(exc.value)


@pytest.mark.parametrize("body", [[], "deploy", 42, None])
def test_non_object_bodies(body):
    with pytest.raises(InvalidChange, match="JSON object"):
        detect_and_parse(body)


def test_invalid_change_is_a_value_error_and_an_invalid_message():
    assert issubclass(InvalidChange, ValueError) and issubclass(InvalidChange, InvalidMessage)


def test_parsers_do_not_change_their_input():
    body = status_event()
    before = copy.deepcopy(body)
    parse_github("deployment_status", body)
    assert body == before


# --- log lines ---------------------------------------------------------------------------------------------------

# (message, action, version, status, service); service "web" is the emitter's
POSITIVE = [
    ("deployed checkout v1.2.3 to production", "deploy", "v1.2.3", "success", "checkout"),
    ("deploying build 8841", "deploy", "8841", "in_progress", "web"),
    ("rolling out version 2.4.0 to 10% of hosts", "deploy", "2.4.0", "in_progress", "web"),
    ("release 2.3.1 started", "deploy", "2.3.1", "in_progress", "web"),
    ("release 2.3.1 complete", "deploy", "2.3.1", "success", "web"),
    ("image updated to registry.example.com/shop/checkout:1.2.3", "deploy", "1.2.3", "success", "web"),
    ("failed to deploy checkout 1.2.4: ImagePullBackOff", "deploy", "1.2.4", "failure", "checkout"),
    ("Deployed 3f2a9c1 to staging", "deploy", "3f2a9c1", "success", "web"),
    ('deployment "checkout" successfully rolled out', "rollout", "", "success", "checkout"),
    ("canary step 3/8: traffic weight set to 40%", "rollout", "", "success", "web"),
    ("Rollout checkout paused at step 2", "rollout", "", "success", "web"),
    ("rolled back to v2.3.0", "rollback", "v2.3.0", "success", "web"),
    ("rollback to 2.3.0 complete", "rollback", "2.3.0", "success", "web"),
    ("rollback to v2.3.0 failed: image pull error", "rollback", "v2.3.0", "failure", "web"),
    ("deploy 2.4.0 failed health checks, rolling back to 2.3.0", "rollback", "2.3.0", "in_progress", "web"),
    ("rolled back checkout to image registry.example.com/shop/checkout:2.3.0", "rollback", "2.3.0", "success",
     "web"),
    ("error during rollback of release 2.4.0", "rollback", "", "failure", "web"),
    ("reverting deploy 8841", "rollback", "", "in_progress", "web"),
    ("helm rollback checkout 12", "rollback", "12", "success", "checkout"),
    ("config reloaded", "config-reload", "", "success", "web"),
    ("SIGHUP received, reloading configuration", "config-reload", "", "in_progress", "web"),
    ("configuration version 42 applied", "config-reload", "42", "success", "web"),
    ("Completed loading of configuration file", "config-reload", "", "success", "web"),
    ("waf ruleset 2024-11-20.1 pushed to edge", "config-reload", "2024-11-20.1", "success", "web"),
    ("feature flag new-checkout enabled for 50%", "feature-flag", "", "success", "web"),
    ("flag dark-mode toggled", "feature-flag", "", "success", "web"),
    ("feature flag <PERSON_1>-beta disabled by <PERSON_2>", "feature-flag", "", "success", "web"),
    ("promoted db-2 to primary", "failover", "", "success", "web"),
    ("failover to replica complete", "failover", "", "success", "web"),
    ("Failing over to replica db-3", "failover", "", "in_progress", "web"),
    ("raft: 8e9e05c52164694d elected leader 8e9e05c52164694d at term 2", "failover", "", "success", "web"),
    ("restarted 12 pods", "restart", "", "success", "web"),
    ("service restarted", "restart", "", "success", "web"),
    ("kubectl rollout restart deployment/checkout", "restart", "", "success", "checkout"),
    ("scaled deployment checkout from 20 to 60 replicas", "scale", "", "success", "checkout"),
    ("Scaled up replica set checkout-7d9f8c6b5 to 60", "scale", "", "success", "web"),
    ("autoscaler added 10 nodes to pool default", "scale", "", "success", "web"),
    ("New size: 60; reason: cpu resource utilization (percentage of request) above target", "scale", "",
     "success", "web"),
    ("certificate renewed, notAfter=2027-02-18T00:00:00Z", "certificate-renew", "", "success", "web"),
    ("cert-manager issued certificate checkout-tls", "certificate-renew", "", "success", "web"),
]

NEGATIVE = [
    "upstream timeout", "connection refused", "TLS handshake failed: certificate has expired",
    "request served in 12 ms", "cache hit ratio 0.93", "GC pause 45ms", "failed to restart connection",
    "error during rollback: connection closed", "Transaction rolled back due to deadlock", "ROLLBACK TO SAVEPOINT sp1",
    "x509: certificate signed by unknown authority",
    "certificate verify failed: unable to get local issuer certificate",
    "client certificate issued by untrusted CA", "certificate for <URL_1> expires in 7 days, not yet renewed",
    "Back-off restarting failed container checkout in pod checkout-7d9f8c6b5-x2k4q_default",
    "Liveness probe failed: HTTP probe failed with statuscode: 500; container will be restarted",
    "restarting worker after 1000 tasks", "flag provided but not defined: -verbose",
    "feature flag service unavailable, using defaults", "config file /etc/app.yaml not found, using defaults",
    "configuration error: unknown field 'timeout' (not applied)",
    "NullPointerException at com.example.Checkout.applyConfig(Checkout.java:42)",
    "GET /api/v1/deployments/42 200 12ms", "user <PERSON_1> updated profile settings", "scaling factor set to 1.5",
    "thumbnail scaled to 200x200", "escalated ticket to tier 2", "attempting to acquire leader lease kube-system/x",
    "LEADER_NOT_AVAILABLE for partition orders-7", "primary key violation on table orders",
    "released connection back to pool", "image not found: registry.example.com/shop/app:1.2.3",
    "healthcheck ok for deployed version 1.2.3", "reverting to default value for timeout",
    "failover test skipped: no replica configured", "deadline exceeded while waiting for canary",
    "disk usage 91% on /var/lib/postgresql", "HTTP 503 from payments-api after 3 retries",
    "slow query: SELECT * FROM orders WHERE id = $1 (812 ms)", "session <ID_1> expired for user <PERSON_1>",
]


@pytest.mark.parametrize("message, action, version, status, service", POSITIVE)
def test_change_lines(message, action, version, status, service):
    ev = change_from_log("web", "INFO", message, AT, {})
    assert ev is not None, message
    assert (ev.action, ev.version, ev.status, ev.service) == (action, version, status, service)
    assert ev.source == "log" and ev.at == AT and ev.description == message


@pytest.mark.parametrize("level", ["INFO", "WARNING", "ERROR"])
def test_noise_and_error_lines_are_no_changes(level):
    assert len(POSITIVE) >= 25 and len(NEGATIVE) >= 25
    false_positives = [m for m in NEGATIVE if change_from_log("web", level, m, AT, {}) is not None]
    assert false_positives == []


def test_kinds_follow_actions():
    kinds = {change_from_log("web", "INFO", m, AT, {}).action: change_from_log("web", "INFO", m, AT, {}).kind
             for m, *_ in POSITIVE}
    assert kinds == {"deploy": "deploy", "rollout": "deploy", "rollback": "deploy", "config-reload": "config",
                     "feature-flag": "feature-flag", "failover": "infra", "restart": "infra", "scale": "infra",
                     "certificate-renew": "infra"}


def test_error_level_marks_a_change_line_failed_unless_it_says_otherwise():
    assert change_from_log("web", "ERROR", "rolled back to v2.3.0", AT, {}).status == "failure"
    assert change_from_log("web", "ERROR", "rollback to 2.3.0 complete", AT, {}).status == "success"


def test_attributes_give_environment_and_actor():
    ev = change_from_log("deployer", "INFO", "deployed checkout v1.2.3", AT,
                         {"deployment.environment": "production", "user": "<PERSON_1>", "host": "ci-3"})
    assert (ev.environment, ev.actor, ev.service) == ("production", "<PERSON_1>", "checkout")


def test_only_the_start_of_a_long_line_is_read():
    assert change_from_log("web", "ERROR", "x" * 5000 + " deployed checkout v1.2.3", AT, {}) is None


@pytest.mark.parametrize("text, version", [
    ("image registry.acme.example:5000/shop/checkout:2.4.1 pulled", "2.4.1"),
    ("build #8841 queued", "8841"), ("configuration version 42", "42"), ("release v3.0.0-rc.2", "v3.0.0-rc.2"),
    ("now at v2", "v2"), ("running 1.22.3 on node", "1.22.3"), ("host 10.0.0.12 ready", ""),
    ("commit 9f3c2d1e8b7a6f5e4d3c2b1a09f8e7d6c5b4a321", "9f3c2d1"), ("took 12.5 s", ""), ("<IP_ADDRESS_1>", ""),
])
def test_version_of(text, version):
    assert version_of(text) == version


@pytest.mark.parametrize("ref, tag", [
    ("nginx:1.27", "1.27"), ("registry:5000/app", ""), ("registry:5000/app:7", "7"),
    ("ghcr.io/acme/app:1.2.3@sha256:" + "0" * 64, "1.2.3"),
    ("ghcr.io/acme/app@sha256:" + "f" * 64, "sha256:ffffffffffff"),
])
def test_image_tag(ref, tag):
    assert image_tag(ref) == tag


def first_rule(message: str):
    low = message.lower()
    return next((r for r in RULES if any(k in low for k in r.keywords)
                 and (not r.context or any(c in low for c in r.context)) and r.pattern.search(message)), None)


def test_every_rule_recognises_its_own_example():
    """What describe_rules() says (and the README shows) holds: each example is taken by its own rule, first."""
    assert len({name for name, _, _ in describe_rules()}) == len(RULES) >= 15
    for rule, (name, action, example) in zip(RULES, describe_rules(), strict=True):
        assert action in get_args(changes.Action) and rule.kind in get_args(changes.Kind)
        assert all(k == k.lower() for k in rule.keywords + rule.context), name
        assert first_rule(example) is rule, (name, example)
        ev = change_from_log("web", "INFO", example, AT, {})
        assert ev is not None and ev.action == action, (name, example)


class CountingPattern:
    def __init__(self, pattern):
        self.pattern, self.calls = pattern, 0

    def search(self, text):
        self.calls += 1
        return self.pattern.search(text)


def test_noise_never_reaches_a_regex(monkeypatch):
    """The substring pre-check answers for ordinary lines: 10,000 of them run no rule's regex at all."""
    counted = [dataclasses.replace(r, pattern=CountingPattern(r.pattern)) for r in RULES]
    monkeypatch.setattr(change_rules, "RULES", counted)
    rnd = random.Random(7)
    shapes = ["upstream timeout after {} ms talking to payments-api", "connection refused: <IP_ADDRESS_1>:{}",
              "request served in {} ms", "GET /api/v1/orders/<ID_1> 200 {}ms", "cache hit ratio 0.{}",
              "GC pause {}ms", "user <PERSON_1> logged in from <IP_ADDRESS_2> (session {})",
              "processed batch of {} events", "kafka consumer lag {} on partition 7", "HTTP 503 after {} retries"]
    noise = [rnd.choice(shapes).format(rnd.randint(1, 99999)) for _ in range(10_000)]
    assert all(change_from_log("web", "INFO", m, AT, {}) is None for m in noise)
    assert sum(r.pattern.calls for r in counted) == 0
    assert change_from_log("web", "INFO", "restarted 12 pods", AT, {}) is not None
    assert sum(r.pattern.calls for r in counted) >= 1  # the counting sees the rules that do run


def test_the_demo_sample_lines_are_changes():
    """A rollback naming its service before the version, and a 'deploy started:' line (the demo's own lines)."""
    at = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)
    rollback = change_from_log("checkout", "WARNING", "rollback to checkout v2.3.0 started by <PERSON_1> (<EMAIL_1>)",
                               at, {})
    deploy = change_from_log("checkout", "INFO", "deploy started: checkout v2.3.1 by pipeline run 8812", at, {})
    assert (rollback.action, rollback.service, rollback.version) == ("rollback", "checkout", "v2.3.0")
    assert (deploy.action, deploy.service, deploy.version) == ("deploy", "checkout", "v2.3.1")
