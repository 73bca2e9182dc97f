"""Wiring: start the broker (if embedded), migrate, and run the chosen roles in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from opsdraft import receipts, reconcile
from opsdraft.broker import EmbeddedBroker, ensure_topics
from opsdraft.bus import Bus
from opsdraft.db import Database, migrate
from opsdraft.outbox import relay_outbox
from opsdraft.privacy import get_redactor, publish_transform
from opsdraft.runtime import Runtime
from opsdraft.settings import ROLE_NAMES as ROLES
from opsdraft.settings import Settings
from opsdraft_app.supervisor import Health, RoleRun, supervise

log = logging.getLogger(__name__)


@asynccontextmanager
async def kafka(settings: Settings) -> AsyncIterator[str]:
    """The configured cluster, or an embedded broker that lives as long as this context."""
    broker = None
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        # On this thread, not a worker thread: the broker is killed with the thread that started it (PDEATHSIG).
        broker = EmbeddedBroker(address_file=settings.data_dir / "broker.addr").start()
        bootstrap = broker.bootstrap
        log.info("started embedded Kafka broker on %s", bootstrap)
    try:
        await ensure_topics(bootstrap, settings.topics.all())
        yield bootstrap
    finally:
        if broker:
            broker.stop()


@asynccontextmanager
async def runtime(settings: Settings, bootstrap: str) -> AsyncIterator[Runtime]:
    await asyncio.to_thread(migrate, settings.db_url)
    db = Database(settings.db_url)
    recovered = await asyncio.to_thread(reconcile.on_start, db, settings)  # the embedded broker lost its topics
    bus = await Bus(bootstrap).start()
    try:
        if recovered and recovered.receipts:  # before any role runs: they come before anything new
            await receipts.produce_again(db, bus, settings)
        redactor = await asyncio.to_thread(get_redactor, settings)
        freeze_startup_heap()
        yield Runtime(settings=settings, db=db, bus=bus, redactor=redactor)
    finally:
        await bus.stop()
        db.dispose()


def freeze_startup_heap() -> None:
    """The redactor (Presidio, spaCy) and the libraries behind it are millions of long-lived objects, and every full
    garbage collection walked them all: 0.1-0.6 s each, stalling ingest mid-batch (bench/ingest). Frozen, later
    collections walk only what was made after. Once per process: a process that builds many runtimes (the tests)
    would otherwise freeze each one's garbage cycles for good."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


async def run_roles(rt: Runtime, roles: set[str], stop: asyncio.Event, slack_client=None,
                    health: Health | None = None) -> None:
    """Run the roles until `stop`. Each role is supervised (opsdraft_app/supervisor.py): one that fails starts
    again with backoff while the others go on. The HTTP listener is not: failing to serve (a port in use) is fatal."""
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; choose from {', '.join(ROLES)}")
    health = health or Health()
    supervised: dict[str, RoleRun] = {
        "outbox": lambda st: relay_outbox(rt.db, rt.bus, st, transform=publish_transform(rt.settings, rt.db))}
    # Imported lazily: a process that runs only the bot never loads torch or the model.
    if "consumers" in roles:
        from consumers import worker as consumers

        supervised["consumers"] = lambda st: consumers.run(rt, st)
    if "summarizer" in roles:
        from summarizer import worker as summarizer

        supervised["summarizer"] = lambda st: summarizer.run(rt, st)
    if "bot" in roles:
        from bot import worker as bot

        supervised["bot"] = lambda st: bot.run(rt, st)
        if rt.settings.slack_app_token:
            from bot import socket_mode

            supervised["socket-mode"] = lambda st: socket_mode.run(rt, st, slack_client)
    jobs = [supervise(name, run, stop, health) for name, run in supervised.items()]
    if "http" in roles:
        jobs.append(serve_http(rt, "bot" in roles, stop, slack_client, health))
    tasks = [asyncio.create_task(j) for j in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            t.result()
    finally:
        stop.set()
        for t in tasks:
            if not t.done():
                try:
                    await asyncio.wait_for(t, 15)
                except (TimeoutError, asyncio.CancelledError):
                    t.cancel()


async def serve_http(rt: Runtime, with_bot: bool, stop: asyncio.Event, slack_client=None,
                     health: Health | None = None) -> None:
    from opsdraft_app.http import build_http

    slack_app = None
    if with_bot:
        from bot.app import build_app

        slack_app = build_app(rt, slack_client)
    # On the embedded broker a webhook's 202 is made durable by a receipt in the database (opsdraft/receipts.py).
    record = None if rt.settings.kafka_bootstrap_servers else receipts.recorder(rt.db, rt.settings)
    api = build_http(rt.settings, rt.bus, slack_app, health, record)
    server = uvicorn.Server(uvicorn.Config(api, host=rt.settings.http_host, port=rt.settings.http_port,
                                           log_level="warning", lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # the CLI owns signals
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
