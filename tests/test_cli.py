"""The command line, run as a user would (Typer's runner, real database and broker)."""

import json
import re

import pytest
from typer.testing import CliRunner

from opsdraft_app.cli import app

runner = CliRunner()


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("OPSDRAFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPSDRAFT_REDACTION_MODE", "patterns")
    return tmp_path


@pytest.mark.parametrize("args", [[], ["run"], ["drafts"], ["replay"], ["demo"], ["index"], ["migrate"]])
def test_help_everywhere(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_wrong_setting_names_the_variable(env, monkeypatch):
    monkeypatch.setenv("OPSDRAFT_HTTP_PORT", "http")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 2 and "OPSDRAFT_HTTP_PORT" in result.output


def test_migrate_then_drafts_list_and_show(env):
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    from opsdraft.db import Database
    from opsdraft.models import Draft
    from opsdraft.settings import load_settings

    with Database(load_settings().db_url).session() as s:
        s.add(Draft(request_id="r", kind="postmortem", subject_type="incident", subject_id=1, title="PM one",
                    body="## Summary\nbody text", sources=["alert:1"], notes=["made without a model"], model="none"))
    listed = runner.invoke(app, ["drafts", "list"])
    assert listed.exit_code == 0 and "PM one" in listed.output
    shown = runner.invoke(app, ["drafts", "show", "1", "--json"])
    assert json.loads(shown.output)["body"] == "## Summary\nbody text"
    assert runner.invoke(app, ["drafts", "show", "99"]).exit_code == 1


def test_redact_reads_stdin_line_by_line(env):
    text = "login by bob@example.com on db-01.prod\nkey AKIAIOSFODNN7EXAMPLE at 2026-11-20T14:00:00Z\n"
    result = runner.invoke(app, ["redact"], input=text)
    lines = result.output.splitlines()
    assert result.exit_code == 0 and len(lines) == 2
    assert "bob@example.com" not in lines[0] and "db-01.prod" in lines[0]
    assert "AKIA" not in lines[1] and "2026-11-20T14:00:00Z" in lines[1]


@pytest.mark.broker
def test_replay_produces_each_line(env, kafka_bootstrap, monkeypatch):
    import asyncio

    from opsdraft.bus import Bus

    monkeypatch.setenv("OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    topic = f"replay-{env.name}"
    f = env / "events.jsonl"
    f.write_text('{"a": 1}\n\n{"a": 2}\nnot json\n')
    result = runner.invoke(app, ["replay", str(f), "--topic", topic])
    assert result.exit_code == 0 and "produced 3 messages" in result.output

    async def consume():
        bus = await Bus(kafka_bootstrap).start()
        try:
            consumer = bus.consumer([topic], "replay-check")
            await consumer.start()
            got = []
            for _ in range(40):
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    got += [r.value for r in records]
                if len(got) >= 3:
                    break
            await consumer.stop()
            return got
        finally:
            await bus.stop()

    assert sorted(asyncio.run(consume())) == [b"not json", b'{"a": 1}', b'{"a": 2}']


def test_replay_without_a_broker_says_what_to_do(env, monkeypatch):
    monkeypatch.delenv("OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    f = env / "e.jsonl"
    f.write_text("{}\n")
    result = runner.invoke(app, ["replay", str(f), "--topic", "alerts"])
    assert result.exit_code == 2 and "OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS" in result.output


def test_index_builds_from_runbooks(env):
    result = runner.invoke(app, ["index"])
    assert result.exit_code == 0, result.output
    assert "index at" in result.output and (env / "data" / "index").is_dir()
    again = runner.invoke(app, ["index"])  # an update replaces chunks, it does not duplicate them
    first, second = (" ".join(r.output.split()) for r in (result, again))  # rich wraps long paths
    count = int(first.split("holds ")[1].split()[0])
    assert count > 10 and f"holds {count} chunks" in second


@pytest.mark.broker
def test_dlq_list_and_replay(env, kafka_bootstrap, monkeypatch):
    import asyncio

    from opsdraft.bus import Bus, Message, dead_letter
    from opsdraft.privacy import sealer
    from opsdraft.settings import load_settings

    monkeypatch.setenv("OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("OPSDRAFT_TOPIC_DEAD_LETTERS", f"dlq-{env.name}")
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside the table
    source = f"src-{env.name}"
    settings = load_settings()
    original = b'{"body": "call +1 415 555 0134"'

    async def park():
        bus = await Bus(kafka_bootstrap).start()
        try:
            msg = Message(source, 0, 41, "k1", original, {})
            await dead_letter(bus, settings.topics.dead_letters, msg, "not JSON", lambda t: re.sub(r"\d", "#", t),
                              sealer(settings))
        finally:
            await bus.stop()

    asyncio.run(park())
    listed = runner.invoke(app, ["dlq", "list", "--wait", "3"])
    assert listed.exit_code == 0 and "not JSON" in listed.output and f"{source}[0]@41" in listed.output
    assert "555 0134" not in listed.output
    replayed = runner.invoke(app, ["dlq", "replay", "--wait", "3"])
    assert replayed.exit_code == 0 and "replayed 1 dead letters" in replayed.output

    async def fetch():
        bus = await Bus(kafka_bootstrap).start()
        try:
            consumer = bus.consumer([source], "dlq-check")
            await consumer.start()
            for _ in range(40):
                batch = await consumer.getmany(timeout_ms=300)
                if batch:
                    await consumer.stop()
                    return [r.value for rs in batch.values() for r in rs]
            await consumer.stop()
            return []
        finally:
            await bus.stop()

    assert asyncio.run(fetch()) == [original]
