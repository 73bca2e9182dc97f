"""The OpenAI-compatible model setting, against a real HTTP server in the test process."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from summarizer.llm import OpenAIGenerator, load_generator
from summarizer.ticket_reply import build_ticket_reply
from tests.test_summarizer_drafts import INJECTION, _help_hits

HITS = ("help:double-charges.md#when-both-charges-are-still-there",)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: str, delay_s: float = 0.0, status: int = 200):
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer, self.delay_s, self.status = answer, delay_s, status
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def handle_error(self, request, client_address):  # the timeout test hangs up first: expected
        pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        time.sleep(srv.delay_s)
        with srv.lock:
            srv.in_flight -= 1
        if self.path != "/v1/chat/completions" or srv.status != 200:
            self.send_response(srv.status if srv.status != 200 else 404)
            self.end_headers()
            self.wfile.write(b'{"error": "no"}')
            return
        out = {"choices": [{"message": {"role": "assistant", "content": srv.answer}}],
               "usage": {"completion_tokens": 12}}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(request):
    srv = Server(*getattr(request, "param", ("If both charges are still there after 5 business days, we refund "
                                             "the duplicate charge.",)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_setting_url_drafts_a_reply(server, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("OPSDRAFT_MODEL_API_KEY", "k-123")
    gen = load_generator(f"{server.url}#qwen2.5:7b", tmp_path)
    assert isinstance(gen, OpenAIGenerator) and gen.name == f"qwen2.5:7b @ {server.url}"
    draft = build_ticket_reply(INJECTION, _help_hits(*HITS), gen, max_new_tokens=77)
    assert draft.model == gen.name
    assert draft.body.startswith("Hello <PERSON_1>,\n\nIf both charges are still there after 5 business days, "
                                 "we refund the duplicate charge.")
    assert draft.citations[0]["sources"][0]["key"] == HITS[0] and "[" not in draft.body
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["model"] == "qwen2.5:7b"
    assert req["max_tokens"] == 77 and req["temperature"] == 0 and req["auth"] == "Bearer k-123"
    assert req["messages"][0]["role"] == "system" and "<<<TICKET" in req["messages"][1]["content"]


def test_concurrent_requests_reach_the_server_together(server):
    server.delay_s = 0.3
    gen = OpenAIGenerator(server.url)
    threads = [threading.Thread(target=gen.generate, args=([{"role": "user", "content": "hi"}],)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.requests) == 4 and server.max_in_flight >= 2  # not serialised: the server can batch


@pytest.mark.parametrize("server", [("late", 2.0)], indirect=True)
def test_timeout_falls_back_to_deterministic_draft(server):
    gen = OpenAIGenerator(server.url, timeout_s=0.3)
    draft = build_ticket_reply(INJECTION, _help_hits(*HITS), gen)
    assert draft.model == "none (deterministic)" and "business days" in draft.body  # quoted from the source
    assert any("model failed" in n and "too slow" in n for n in draft.notes)


@pytest.mark.parametrize("server", [("x", 0.0, 500)], indirect=True)
def test_server_error_falls_back(server):
    draft = build_ticket_reply(INJECTION, _help_hits(*HITS), OpenAIGenerator(server.url))
    assert draft.model == "none (deterministic)" and any("answered 500" in n for n in draft.notes)


def test_settings_passed_in_configure_the_server_client(tmp_path: Path):
    from opsdraft.settings import load_settings

    url = "http://127.0.0.1:9/v1"
    gen = load_generator(url, tmp_path, settings=load_settings(model_api_key="k-9", model_server_model="m",
                                                                model_timeout_s=7))
    assert (gen.model, gen.api_key, gen.timeout_s) == ("m", "k-9", 7)
    plain = load_generator(url, tmp_path, settings=load_settings(model_api_key="", model_server_model="default",
                                                                  model_timeout_s=None))
    assert (plain.model, plain.api_key, plain.timeout_s) == ("default", "", 120)
