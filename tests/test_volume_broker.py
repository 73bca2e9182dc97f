"""Issue 17 on the real broker: realistic-volume scenarios (bench/drafts/volume_scenarios.py, 3,000 and 9,000
events) produced to the topics as a company's monitoring would, keyed and partitioned as in production, consumed
by the consumers role; then one incident per outage, and a postmortem (no model) naming the trigger and the
resolution."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.worker import Dispatcher
from consumers.worker import run as run_consumers
from opsdraft import offsets
from opsdraft.broker import ensure_topics
from opsdraft.bus import Bus
from opsdraft.events import DraftRequest
from opsdraft.models import Incident
from opsdraft.runtime import Runtime
from tests.conftest import until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "drafts"))
from volume import _time  # noqa: E402
from volume_scenarios import customer_config_latent_bug, deploy_pool_exhaustion, score_named  # noqa: E402

pytestmark = pytest.mark.broker


def _key(topic: str, value: dict) -> str:
    """As the webhook receivers key them (an Alertmanager group by its groupKey, so its updates stay in order),
    logs and changes by service."""
    if topic == "alerts":
        return str(value.get("groupKey") or value.get("fingerprint") or "alert")
    return str(value.get("service") or "change")


def _section(body: str, name: str) -> str:
    part = body.split(f"## {name}", 1)[-1]
    return part.split("\n## ", 1)[0]


@pytest.mark.parametrize("make", [deploy_pool_exhaustion, customer_config_latent_bug], ids=lambda f: f.__name__)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_realistic_outage_through_the_broker_is_one_incident_with_its_trigger_and_fix(
        make, kafka_bootstrap, database, make_settings, redactor):
    sc = make()
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, redaction_mode="patterns",
                             incident_quiet_period_s=300)
    await ensure_topics(kafka_bootstrap, settings.topics.all())
    bus = await Bus(kafka_bootstrap).start()
    rt = Runtime(settings=settings, db=database, bus=bus, redactor=redactor)
    for m in sc["messages"]:
        await bus.producer.send(getattr(settings.topics, m["topic"]), json.dumps(m["value"]).encode(),
                                key=_key(m["topic"], m["value"]).encode())
    await bus.producer.flush()
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(rt, stop))

    def done() -> int:
        with database.session() as s:
            return offsets.done_count(s)

    try:
        await until(lambda: done() == len(sc["messages"]), timeout=240, what=f"{len(sc['messages'])} events applied")
    finally:
        stop.set()
        await task
        await bus.stop()
    with database.session() as s:  # the quiet period passes after the last event
        last = max(_time(m) for m in sc["messages"])
        Dispatcher(rt).ingest.close_quiet_incidents(s, last + timedelta(seconds=301))
    from summarizer.worker import Summarizer

    summarizer = Summarizer(settings)
    with database.session() as s:
        incidents = list(s.scalars(select(Incident)))
        assert len(incidents) == sc["truth"]["real_incidents"], [(i.id, i.title) for i in incidents]
        postmortem = summarizer.make(s, DraftRequest(kind="postmortem", subject_type="incident",
                                                     subject_id=incidents[0].id))
    analysis = postmortem.analysis
    assert score_named(_section(postmortem.body, "Trigger").split("\n- Less likely")[0], sc["truth"]["trigger"]), \
        _section(postmortem.body, "Trigger")
    assert score_named(_section(postmortem.body, "Resolution"), sc["truth"]["resolution"]), \
        _section(postmortem.body, "Resolution")
    assert analysis["impact_start"][:16] == sc["truth"]["impact_start"][:16]
