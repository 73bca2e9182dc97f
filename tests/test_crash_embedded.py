"""kill -9 of `opsdraft run` on the embedded defaults (in-memory Tansu broker, SQLite) at each step of the demo
flow: alert in (a webhook's 202) -> incident opened -> draft requested -> draft made -> draft posted -> approved
-> published.
After each kill it is restarted, and the flow completes with nothing lost and nothing doubled in Slack.

The broker keeps its topics in memory, so every kill loses every message in flight. To make each step's loss
certain rather than a matter of timing, the process killed at a step runs without the role that would consume
what that step sent (e.g. the draft request is sent with no summarizer running): only the reconcile at start
(opsdraft/reconcile.py) can bring it back. Each process killed is also checked to take its broker with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.ids import ActionId
from opsdraft.broker import free_port
from opsdraft.db import Database
from opsdraft.models import Draft, Incident, Outbox, WebhookReceipt
from opsdraft_app.testing.slackfake import FakeSlack
from opsdraft_app.testing.slacksign import block_action_body, sign

pytestmark = [pytest.mark.broker, pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG")]
SECRET = "crash-signing-secret"
APPROVER = "U0CRASH"


def alert(status: str, ends: str = "0001-01-01T00:00:00Z") -> dict:
    return {"version": "4", "status": status, "receiver": "opsdraft", "groupKey": "g", "alerts": [{
        "status": status, "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
        "annotations": {"summary": "HTTP 503 on checkout"}, "startsAt": "2026-11-20T14:02:10Z", "endsAt": ends,
        "fingerprint": "crash-fp"}]}


class Opsdraft:
    """`opsdraft run` as an operator starts it: embedded broker, SQLite in its data dir."""

    def __init__(self, tmp: Path, fake: FakeSlack):
        self.tmp, self.port, self.proc, self.starts = tmp, free_port(), None, 0
        self.url = f"sqlite:///{tmp / 'data' / 'opsdraft.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDRAFT_")}
        self.env = {**env, "OPSDRAFT_DATA_DIR": str(tmp / "data"), "OPSDRAFT_MODEL": "none",
                    "OPSDRAFT_REDACTION_MODE": "patterns", "OPSDRAFT_REDACTION_KEY": "crash-key",
                    "OPSDRAFT_SLACK_API_URL": fake.base_url, "OPSDRAFT_SLACK_BOT_TOKEN": "xoxb-crash",
                    "OPSDRAFT_SLACK_SIGNING_SECRET": SECRET, "OPSDRAFT_HTTP_PORT": str(self.port),
                    "OPSDRAFT_INCIDENT_QUIET_PERIOD_S": "1", "OPSDRAFT_INSECURE_DEV": "true",
                    "OPSDRAFT_LOG_LEVEL": "WARNING"}

    def start(self, roles: str) -> None:
        self.starts += 1
        log = open(self.tmp / f"run-{self.starts}.log", "wb")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen([sys.executable, "-m", "opsdraft_app.cli", "run", "--roles", roles],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)
        until(lambda: self.healthy(), 180, f"opsdraft run --roles {roles} to answer /healthz")

    def healthy(self) -> bool:
        assert self.proc.poll() is None, (self.tmp / f"run-{self.starts}.log").read_text()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """kill -9 of the process alone (not its group): its broker must die with it."""
        broker = int((self.tmp / "data" / "broker.pid").read_text().split()[0])
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        until(lambda: not Path(f"/proc/{broker}").exists() or "Z" in Path(f"/proc/{broker}/stat").read_text()
              .rpartition(")")[2].split()[:1], 10, "the broker to die with its parent")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{self.port}{path}", content=body, headers=headers, timeout=10)

    def q(self, fn):
        db = Database(self.url)
        try:
            with db.session() as s:
                return fn(s)
        finally:
            db.dispose()


def until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sent(run: Opsdraft, topic: str) -> bool:
    return bool(run.q(lambda s: s.scalar(select(Outbox.id).where(Outbox.topic == topic, Outbox.sent_at.is_not(None)))))


def postmortem(run: Opsdraft) -> Draft | None:
    return run.q(lambda s: s.scalar(select(Draft).where(Draft.kind == "postmortem")))


def texts(fake: FakeSlack) -> list[str]:
    return [c["args"].get("text", "") for c in fake.calls_to("chat.postMessage") if c["status"] == 200
            and c["response"].get("ok")]


def test_kill_dash_nine_at_each_step_of_the_flow_loses_and_doubles_nothing(tmp_path):
    json_headers = {"content-type": "application/json"}
    with FakeSlack(token="xoxb-crash") as fake:
        run = Opsdraft(tmp_path, fake)
        try:
            # 1. Alert in: accepted (202), with no consumers running to apply it, and killed. The in-memory broker
            # loses it; its receipt (opsdraft/receipts.py) does not.
            run.start("http")
            assert run.post("/webhooks/alertmanager", json.dumps(alert("firing")).encode(), json_headers
                            ).status_code == 202
            run.kill()
            assert run.q(lambda s: s.scalar(select(func.count(WebhookReceipt.id)))) == 1

            # 2. Not sent again: produced again from its receipt at start, the incident opens, its "opened" event is
            # sent, and no bot is running to post it: killed.
            run.start("consumers,http")
            until(lambda: sent(run, "incident-events"), 60, "the incident's opened event to be sent")
            until(lambda: run.q(lambda s: s.scalar(select(func.count(WebhookReceipt.id)))) == 0, 30,
                  "the applied alert's receipt to be deleted")
            run.kill()

            # 3. The bot posts the lost event (reconcile); the alert resolves, the incident closes, its postmortem
            # is requested, and no summarizer is running to make it: killed.
            run.start("consumers,bot,http")
            until(lambda: any("Incident opened" in t for t in texts(fake)), 60, "the lost opened event")
            assert run.post("/webhooks/alertmanager", json.dumps(alert("resolved", "2026-11-20T14:09:00Z")).encode(),
                            json_headers).status_code == 202
            until(lambda: sent(run, "draft-requests"), 60, "the postmortem request to be sent")
            run.kill()

            # 4. The lost request is served: the draft is made, and no bot is running to post it: killed.
            run.start("consumers,summarizer,http")
            until(lambda: postmortem(run) and sent(run, "drafts-ready"), 180, "the postmortem draft to be made")
            run.kill()

            # 5. The draft is posted for approval: killed once it is.
            run.start("consumers,summarizer,bot,http")
            d = until(lambda: (p := postmortem(run)) and p.slack_ts and p, 120, "the draft to be posted")
            run.kill()

            # 6. Approved, but Slack fails the final post: killed with the approval recorded and nothing posted.
            run.start("consumers,summarizer,bot,http")
            fake.fail_next("chat.postMessage")
            body = block_action_body(ActionId.draft_approve, str(d.id), APPROVER, d.slack_channel, d.slack_ts,
                                     message=fake.message(d.slack_channel, d.slack_ts))
            assert run.post("/slack/events", body, {"content-type": "application/x-www-form-urlencoded",
                                                     **sign(SECRET, body)}).status_code == 200
            until(lambda: any(c["status"] != 200 or not c["response"].get("ok")
                              for c in fake.calls_to("chat.postMessage")), 30, "the final post to fail")
            assert postmortem(run).status == "approved"
            run.kill()

            # 7. Published after the restart (the bot posts what was approved and never posted): killed after.
            run.start("consumers,summarizer,bot,http")
            until(lambda: postmortem(run).status == "published", 180, "the approved postmortem to be published")
            run.kill()

            # 8. A last restart re-sends nothing that had arrived.
            run.start("consumers,summarizer,bot,http")
            time.sleep(8)  # long enough for anything re-sent to be consumed and posted (a round trip is < 1 s)
            posted = texts(fake)
            assert run.q(lambda s: [(i.status, len(i.alerts)) for i in s.scalars(select(Incident))]) == [("closed", 1)]
            assert run.q(lambda s: [(x.kind, x.status) for x in s.scalars(select(Draft))]) == [("postmortem",
                                                                                              "published")]
            # The incident-event posts themselves (a draft's text may quote "Incident closed" from the timeline).
            assert sum(t.startswith(":rotating_light: Incident opened") for t in posted) == 1, posted
            assert sum(t.startswith(":white_check_mark: Incident closed") for t in posted) == 1, posted
            assert sum("(final)" in t for t in posted) == 1, posted
            assert len(fake.messages()) == len(posted)  # and nothing else: one post per message
            assert sum(1 for m in fake.messages() if m["ts"] == d.slack_ts) == 1
            assert len(posted) == 4, posted  # opened, closed, the draft for approval, the final postmortem
        finally:
            run.stop()
