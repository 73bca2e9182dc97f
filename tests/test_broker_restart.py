"""The broker killed (kill -9) and restarted mid-stream: consumers reconnect and finish with nothing lost or
doubled. Tansu keeps its log in S3 storage (a local moto_server), which survives the kill."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from consumers.worker import run as run_consumers
from opsdraft.broker import EmbeddedBroker, ensure_topics, free_port
from opsdraft.bus import Bus
from opsdraft.models import LogEvent
from opsdraft.runtime import Runtime
from tests.conftest import produce_log_lines, unavailable

pytestmark = [pytest.mark.broker, pytest.mark.slow]
N = 3000



@pytest.fixture
def s3():
    """A local S3 (moto_server) with the bucket Tansu stores into."""
    boto3 = pytest.importorskip("boto3")
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if not moto:
        unavailable("moto_server", "moto_server is not installed (the dev extra installs moto[server])")
    port = free_port()
    proc = subprocess.Popen([moto, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
    for _ in range(100):
        try:
            client.create_bucket(Bucket="tansu")
            break
        except Exception:
            time.sleep(0.1)
    yield env
    proc.terminate()
    proc.wait(10)


def _count(db, col, *where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(col)).where(*where))


async def test_broker_crash_loses_nothing(s3, database, make_settings, redactor):
    broker = EmbeddedBroker(storage="s3://tansu/", env=s3).start()
    try:
        settings = make_settings(kafka_bootstrap_servers=broker.bootstrap, redaction_mode="patterns")
        await ensure_topics(broker.bootstrap, settings.topics.all())
        bus = await Bus(broker.bootstrap).start()
        await produce_log_lines(bus, settings.topics.logs, N)
        rt = Runtime(settings=settings, db=database, bus=bus, redactor=redactor)
        stop = asyncio.Event()
        task = asyncio.create_task(run_consumers(rt, stop))
        deadline = time.monotonic() + 60
        while _count(database, LogEvent.id) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        broker.kill()  # mid-stream
        killed_at = _count(database, LogEvent.id)
        await asyncio.sleep(2)
        broker.start()  # same port, same S3 bucket
        deadline = time.monotonic() + 120
        while _count(database, LogEvent.id) < N and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 60)
        await bus.stop()
    finally:
        broker.stop()
    assert 0 < killed_at < N, killed_at  # the kill really came mid-stream
    assert _count(database, LogEvent.id) == N
    with database.session() as s:
        messages = s.scalars(select(LogEvent.message)).all()
    assert len(messages) == N and len(set(messages)) == N  # nothing lost, nothing doubled
