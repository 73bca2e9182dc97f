"""PostgreSQL stopped (immediate shutdown) and started again mid-stream: the consumers retry with backoff,
commit no offset while it is down, and finish with nothing lost or doubled. Runs on a private cluster made for
the test (pg_createcluster), so the machine's own PostgreSQL is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid

import pytest
from sqlalchemy import func, select

from consumers.worker import run as run_consumers
from opsdraft.broker import ensure_topics, free_port
from opsdraft.bus import Bus
from opsdraft.db import Database, migrate
from opsdraft.models import LogEvent
from opsdraft.runtime import Runtime
from tests.conftest import produce_log_lines, unavailable
from tests.test_consumers_broker import _committed

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow]
N = 2000



@pytest.fixture
def private_postgres():
    if not shutil.which("pg_createcluster") or not os.path.isdir("/usr/lib/postgresql"):
        unavailable("pg_createcluster", "Debian's postgresql-common (pg_createcluster) is not installed")
    version = sorted(os.listdir("/usr/lib/postgresql"))[-1]
    name, port = f"opsdraft_{uuid.uuid4().hex[:8]}", free_port()
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    made = subprocess.run(["pg_createcluster", version, name, "-p", str(port), "--start", "--", "--auth=trust"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        unavailable("a private PostgreSQL cluster", made.stderr.strip()[-300:])
    try:
        yield (f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
               lambda: subprocess.run([*ctl, "stop", "-m", "immediate"], check=True),
               lambda: subprocess.run([*ctl, "start"], check=True))
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)


def _count(db, col) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(col)))


async def test_database_outage_commits_nothing_and_loses_nothing(private_postgres, kafka_bootstrap, make_settings,
                                                                 redactor):
    url, stop_db, start_db = private_postgres
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, database_url=url, redaction_mode="patterns")
    migrate(url)
    db = Database(url)
    await ensure_topics(kafka_bootstrap, settings.topics.all())
    bus = await Bus(kafka_bootstrap).start()
    await produce_log_lines(bus, settings.topics.logs, N)
    rt = Runtime(settings=settings, db=db, bus=bus, redactor=redactor)
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(rt, stop))
    group = f"{settings.consumer_group}-consumers"
    try:
        deadline = time.monotonic() + 60
        while _count(db, LogEvent.id) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(stop_db)
        await asyncio.sleep(1)
        committed_before = await _committed(bus, group, settings.topics.logs)
        await asyncio.sleep(3)  # the consumer keeps retrying its batch meanwhile
        committed_after = await _committed(bus, group, settings.topics.logs)
        await asyncio.to_thread(start_db)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not task.done():
            try:
                if _count(db, LogEvent.id) >= N:
                    break
            except Exception:  # the pool may hold connections from before the restart for a moment
                pass
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await bus.stop()
    assert committed_before == committed_after  # nothing committed while the database was down
    assert committed_before is None or committed_before < N
    with db.session() as s:
        messages = s.scalars(select(LogEvent.message)).all()
    db.dispose()
    assert len(messages) == N and len(set(messages)) == N
