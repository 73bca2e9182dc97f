"""Property-based fuzzing of every topic: malformed, truncated, wrong-typed, huge and wrongly encoded messages
either apply or are rejected with InvalidMessage (so they dead-letter) — never any other error — and whatever
parses can be written to the database."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.worker import Dispatcher
from opsdraft.bus import InvalidMessage, Message
from opsdraft.runtime import Runtime
from tests.test_vendors import GRAFANA, pagerduty, zendesk

VALID = {
    "alerts": [
        {"fingerprint": "f", "name": "DiskFull", "service": "db", "status": "firing",
         "starts_at": "2026-11-20T14:00:00Z"},
        {"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "X", "job": "api"}, "startsAt": "2026-11-20T14:00:00Z",
             "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "a"}]},
        GRAFANA, pagerduty("incident.triggered"),
    ],
    "logs": [{"timestamp": "2026-11-20T14:00:00Z", "service": "api", "level": "ERROR", "message": "boom",
              "attributes": {"k": 1}}],
    "tickets": [{"id": "T-1", "subject": "s", "body": "b", "requester": "r", "created_at": "2026-11-20T14:00:00Z"},
                zendesk()],
    "incident-commands": [{"action": "close", "incident_id": 1, "actor": "U1"},
                          {"action": "declare", "title": "t", "actor": "U1", "severity": "sev2"}],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)
odd_values = (json_values | st.text(min_size=5000, max_size=20000) | st.just("") | st.integers(-2**70, 2**70)
              | st.just("2026-13-45T99:99:99Z") | st.just("0001-01-01T00:00:00Z") | st.just("9999-12-31T23:59:59Z"))


def _mutate(obj, path_choice: int, value):
    """Replace one field somewhere in a JSON document (or delete it when value is ...)."""
    nodes = []

    def walk(o):
        if isinstance(o, dict):
            for k in list(o):
                nodes.append((o, k))
                walk(o[k])
        elif isinstance(o, list):
            for i in range(len(o)):
                nodes.append((o, i))
                walk(o[i])

    walk(obj)
    if nodes:
        parent, key = nodes[path_choice % len(nodes)]
        if value is ... and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = None if value is ... else value
    return obj


@st.composite
def messages(draw, topic: str) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "truncated", "encoding"]))
    base = json.dumps(draw(st.sampled_from(VALID[topic])))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "truncated":
        return base[: draw(st.integers(0, len(base) - 1))].encode()
    if kind == "encoding":
        return base.encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1"])), errors="replace")
    doc = json.loads(base)
    for _ in range(draw(st.integers(1, 3))):
        doc = _mutate(doc, draw(st.integers(0, 1000)), draw(odd_values | st.just(...)))
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory, redactor):
    from opsdraft.settings import load_settings

    settings = load_settings(data_dir=tmp_path_factory.mktemp("fuzz"), redaction_key="fuzz",
                             redaction_mode="patterns")
    return Dispatcher(Runtime(settings=settings, db=None, bus=None, redactor=redactor))


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    from opsdraft.db import Database, migrate

    url = f"sqlite:///{tmp_path_factory.mktemp('fuzzdb') / 'fuzz.db'}"
    migrate(url)
    return Database(url)


@pytest.mark.parametrize("topic", ["alerts", "logs", "tickets", "incident-commands"])
def test_every_message_applies_or_dead_letters(topic, dispatcher, sqlite_db):
    topic_name = {"alerts": "alerts", "logs": "logs", "tickets": "tickets",
                  "incident-commands": "incident-commands"}[topic]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=messages(topic))
    def check(value: bytes):
        msg = Message(topic_name, 0, 0, None, value, {})
        try:
            parsed = dispatcher.parse(msg)
        except InvalidMessage as exc:
            assert str(exc)  # the reason that goes with the dead letter
            return
        try:
            with sqlite_db.session() as s:
                dispatcher.apply(s, parsed)
        except InvalidMessage:
            pass  # e.g. closing an incident that does not exist: dead-lettered too

    check()
