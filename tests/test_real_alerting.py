"""Real clients: Debian's Prometheus and Alertmanager (installed by .ci/run) drive `opsdraft run` through its
Alertmanager webhook. A scrape target goes down -> an alert -> an incident (Alertmanager's repeats change
nothing); it comes back -> the alert resolves -> the incident closes at the resolve time; another target stays
down and is silenced with amtool -> its alert goes stale and its incident closes saying so. Intervals are
seconds, so the whole run takes well under a minute."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from opsdraft.db import Database
from opsdraft.models import Alert, Incident, TimelineEntry
from opsdraft.settings import Topics
from tests.conftest import unavailable

BINARIES = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager", "amtool": "amtool"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Metrics(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"# a healthy target\nok 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


class Target:
    """A scrape target that can go down (stop listening) and come back on the same port."""

    def __init__(self, port: int):
        self.port, self.server = port, None

    def up(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Metrics)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def wait_for(check, what: str, timeout: float = 30.0, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def binaries():
    missing = [b for b in BINARIES.values() if shutil.which(b) is None]
    if missing:
        unavailable("Prometheus and Alertmanager", f"{', '.join(missing)} not installed (.ci/run installs them)")
    return {k: shutil.which(v) for k, v in BINARIES.items()}


def start(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def test_prometheus_and_alertmanager_against_opsdraft_run(binaries, kafka_bootstrap, tmp_path):
    http_port, am_port, prom_port, checkout_port, payments_port = (free_port() for _ in range(5))
    db_url = f"sqlite:///{tmp_path / 'opsdraft.db'}"
    uid = os.urandom(4).hex()
    env = {**os.environ, "OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "OPSDRAFT_DATABASE_URL": db_url,
           "OPSDRAFT_DATA_DIR": str(tmp_path / "data"), "OPSDRAFT_CONSUMER_GROUP": f"real-{uid}",
           "OPSDRAFT_HTTP_PORT": str(http_port), "OPSDRAFT_INSECURE_DEV": "true", "OPSDRAFT_MODEL": "none",
           "OPSDRAFT_REDACTION_MODE": "patterns", "OPSDRAFT_REDACTION_KEY": "real-clients",
           "OPSDRAFT_INCIDENT_QUIET_PERIOD_S": "2", "OPSDRAFT_INCIDENT_REOPEN_WINDOW_S": "0",
           # Both targets are on 127.0.0.1: correlation would join them into one incident ("same host").
           "OPSDRAFT_INCIDENT_CORRELATION_WINDOW_S": "0",
           # Alertmanager below re-sends every 3 s: not re-sent for 3 of those is stale.
           "OPSDRAFT_ALERT_REPEAT_INTERVAL_S": "3", "OPSDRAFT_ALERT_STALE_AFTER_REPEATS": "3",
           **{f"OPSDRAFT_TOPIC_{k.upper()}": f"{v}-real-{uid}" for k, v in Topics().model_dump().items()}}
    (tmp_path / "rules.yml").write_text("""groups:
- name: opsdraft-test
  rules:
  - alert: TargetDown
    expr: up == 0
    for: 0s
    labels: {severity: critical}
    annotations: {summary: "{{ $labels.service }} is not answering scrapes"}
""")
    (tmp_path / "prometheus.yml").write_text(f"""global:
  {{scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 500ms}}
rule_files: [{tmp_path / 'rules.yml'}]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]
scrape_configs:
- job_name: checkout
  static_configs: [{{targets: ['127.0.0.1:{checkout_port}'], labels: {{service: checkout}}}}]
- job_name: payments
  static_configs: [{{targets: ['127.0.0.1:{payments_port}'], labels: {{service: payments}}}}]
""")
    (tmp_path / "alertmanager.yml").write_text(f"""route:
  receiver: opsdraft
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 3s
receivers:
- name: opsdraft
  webhook_configs: [{{url: 'http://127.0.0.1:{http_port}/webhooks/alertmanager', send_resolved: true}}]
""")
    checkout = Target(checkout_port)
    checkout.up()  # payments (payments_port) never comes up: its alert fires from the start, then is silenced
    am_url = f"http://127.0.0.1:{am_port}"
    procs = [
        start([sys.executable, "-m", "opsdraft_app.cli", "run", "--roles", "consumers,http"], tmp_path / "opsdraft.log",
              env),
        start([binaries["alertmanager"], f"--config.file={tmp_path / 'alertmanager.yml'}",
               f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
               "--cluster.listen-address="], tmp_path / "alertmanager.log"),
        start([binaries["prometheus"], f"--config.file={tmp_path / 'prometheus.yml'}",
               f"--storage.tsdb.path={tmp_path / 'prom'}", f"--web.listen-address=127.0.0.1:{prom_port}",
               "--rules.alert.resend-delay=1s"], tmp_path / "prometheus.log"),
    ]
    db = None
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{http_port}/healthz"), "opsdraft's HTTP", 60)
        db = Database(db_url)

        def incident(service: str) -> Incident | None:
            with db.session() as s:
                inc = s.scalar(select(Incident).where(Incident.service == service))
                if inc is not None:
                    s.expunge(inc)
                return inc

        def firing_entries(service: str) -> int:
            with db.session() as s:
                return len(list(s.scalars(select(TimelineEntry).join(Incident).where(
                    Incident.service == service, TimelineEntry.kind == "alert_firing"))))

        # payments is down from the start: an incident; then silenced, so Alertmanager stops sending it.
        wait_for(lambda: incident("payments"), "the payments incident", 40)
        subprocess.run([binaries["amtool"], "silence", "add", "alertname=TargetDown", "service=payments",
                        "--duration=1h", "--comment=maintenance", "--author=test", f"--alertmanager.url={am_url}"],
                       check=True, capture_output=True, timeout=20)
        down_at = time.time()
        checkout.down()
        opened = wait_for(lambda: incident("checkout"), "the checkout incident", 30)
        # Alertmanager re-sends the firing alert every 3 s: deduplicated, one alert and one firing entry.
        time.sleep(7)
        with db.session() as s:
            assert len(list(s.scalars(select(Alert).where(Alert.service == "checkout")))) == 1
        assert firing_entries("checkout") == 1
        webhooks = _get(f"http://127.0.0.1:{http_port}/metrics").text
        accepted = next(float(line.split()[-1]) for line in webhooks.splitlines()
                        if line.startswith("opsdraft_webhooks_total") and 'outcome="accepted"' in line)
        assert accepted >= 3, webhooks  # the repeats did arrive
        checkout.up()
        up_at = time.time()
        closed = wait_for(lambda: (i := incident("checkout")) and i.status == "closed" and i, "the close", 40)
        with db.session() as s:
            alert = s.scalar(select(Alert).where(Alert.service == "checkout"))
            assert alert.status == "resolved" and alert.ends_at is not None
        # Closed at the alert's resolve (Prometheus's time), not at processing time plus the quiet period.
        assert closed.closed_at == alert.ends_at
        assert closed.opened_at == opened.opened_at
        firing = (closed.closed_at - closed.opened_at).total_seconds()
        assert 0 < firing <= up_at - down_at + 5, (firing, up_at - down_at)
        # payments' alert was silenced: never resolved, it goes stale and its incident closes saying so.
        stale = wait_for(lambda: (i := incident("payments")) and i.status == "closed" and i, "the stale close", 40)
        assert "stale" in (stale.close_note or ""), stale.close_note
        with db.session() as s:
            assert s.scalar(select(Alert.status).where(Alert.service == "payments")) == "stale"
        assert stale.closed_at <= closed.closed_at + timedelta(seconds=60)
    except BaseException:
        for name in ("opsdraft.log", "alertmanager.log", "prometheus.log"):
            print(f"--- {name}\n" + (tmp_path / name).read_text(errors="replace")[-3000:])
        raise
    finally:
        if db is not None:
            db.dispose()
        checkout.down()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 15)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()


def _get(url: str) -> httpx.Response | None:
    try:
        r = httpx.get(url, timeout=2)
        return r if r.status_code == 200 else None
    except httpx.HTTPError:
        return None
