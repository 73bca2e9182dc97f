"""The webhook receivers fuzzed from their own OpenAPI schema (schemathesis): whatever arrives, never a 5xx."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def webhook_server(kafka_bootstrap, tmp_path_factory):
    """The real HTTP app with a real producer, served by uvicorn on its own thread and event loop."""
    import uvicorn

    from opsdraft.broker import ensure_topics
    from opsdraft.bus import Bus
    from opsdraft.settings import load_settings
    from opsdraft_app.http import build_http

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Without webhook secrets (insecure_dev) so that the generated bodies reach the parsers.
    settings = load_settings(data_dir=tmp_path_factory.mktemp("st"), kafka_bootstrap_servers=kafka_bootstrap,
                             insecure_dev=True)
    server: dict = {}

    async def main():
        await ensure_topics(kafka_bootstrap, settings.topics.all())
        bus = await Bus(kafka_bootstrap).start()
        server["uvicorn"] = uvicorn.Server(uvicorn.Config(build_http(settings, bus, None), host="127.0.0.1",
                                                          port=port, log_level="warning", lifespan="off"))
        try:
            await server["uvicorn"].serve()
        finally:
            await bus.stop()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server["uvicorn"].should_exit = True
    thread.join(15)


def test_webhooks_never_answer_5xx(webhook_server):
    """Every operation under /webhooks, with schemathesis's generated cases (its pytest plugin is not used:
    it does not run on this pytest), checked for server errors."""
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{webhook_server}/openapi.json").include(path_regex="^/webhooks/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/webhooks/alertmanager", "/webhooks/grafana",
                                              "/webhooks/pagerduty", "/webhooks/tickets", "/webhooks/changes"}
    seen: set[int] = set()
    for operation in operations:
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(base_url=webhook_server)
            seen.add(response.status_code)
            assert response.status_code < 500, (case.body, response.text)

        check()
    assert seen <= {202, 400, 413, 422} and 400 in seen
