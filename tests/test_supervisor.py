"""Roles are supervised: one that fails starts again with backoff, the others go on, /healthz and a metric say so."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import REGISTRY

from opsdraft_app.http import build_http
from opsdraft_app.supervisor import Health, supervise
from tests.conftest import until


def _restarts(role: str) -> float:
    return REGISTRY.get_sample_value("opsdraft_role_restarts_total", {"role": role}) or 0.0


async def test_a_failing_role_restarts_with_backoff_while_the_others_go_on(make_settings):
    health, stop = Health(), asyncio.Event()
    attempts, ticks, stopped_parts = [], [], []
    before = _restarts("flaky")

    async def flaky(st: asyncio.Event) -> None:
        attempts.append(asyncio.get_running_loop().time())
        part = asyncio.create_task(st.wait())  # a sibling task of the role, as in consumers.run's gather
        part.add_done_callback(lambda _: stopped_parts.append(len(attempts)))
        if len(attempts) <= 2:
            raise RecursionError("a message nobody thought of")
        await st.wait()

    async def steady(st: asyncio.Event) -> None:
        while not st.is_set():
            ticks.append(1)
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(supervise("flaky", flaky, stop, health, first_delay=0.3)),
             asyncio.create_task(supervise("steady", steady, stop, health))]
    api = build_http(make_settings(), None, None, health)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as client:
        await until(lambda: len(attempts) == 1 and health.roles["flaky"].state == "restarting")
        answer = await client.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["roles"]["flaky"]["last_error"].startswith("RecursionError")
        await until(lambda: len(attempts) == 3, timeout=10)
        await until(lambda: health.ok())
        assert (await client.get("/healthz")).status_code == 200
    stop.set()
    await asyncio.gather(*tasks)
    assert attempts[2] - attempts[1] >= 2 * (attempts[1] - attempts[0]) * 0.9  # backoff doubles
    assert stopped_parts[:2] == [1, 2]  # a failed attempt's other parts were told to stop before the next began
    assert _restarts("flaky") - before == 2 and len(ticks) > 10
    assert health.report()["roles"]["steady"]["restarts"] == 0
