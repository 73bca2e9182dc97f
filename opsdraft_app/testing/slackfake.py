"""A local, stateful fake of the Slack Web API for tests and the terminal demo.

Slack is never reachable from opsdraft's test and demo environments, so the bot's Web API base URL is
configurable and points at :class:`FakeSlack`.  The fake speaks the same wire protocol slack_sdk uses:

* every method is ``POST`` (or ``GET`` for read methods such as ``conversations.info``) to
  ``base_url + method`` with a form-encoded or JSON body, or query-string parameters;
* the token comes as ``Authorization: Bearer xoxb-...`` or as a ``token`` field;
* errors are HTTP 200 with ``{"ok": false, "error": "..."}``; rate limits are HTTP 429 with a
  ``Retry-After`` header.

``response_url(key)`` gives URLs that accept Bolt's ``respond()`` posts (JSON bodies, answered with a
plain-text ``ok`` like Slack's).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

__all__ = ["FakeSlack", "render_message", "validate_blocks"]

MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_VIEW_TITLE = 24
MAX_VIEW_BUTTON = 24
MAX_PRIVATE_METADATA = 3000

BOT_USER_ID = "U_BOT"
BOT_ID = "B_BOT"
TEAM_ID = "T1"
APP_ID = "A_OPSDRAFT"

# Fields that slack_sdk (or a hand-written form post) may send as a JSON-encoded string.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any):
        super().__init__(error)
        self.error = error
        self.extra = extra


# ---------------------------------------------------------------------------------------------------
# Block Kit validation
# ---------------------------------------------------------------------------------------------------


def _text_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        t = obj.get("text")
        return t if isinstance(t, str) else None
    if isinstance(obj, str):
        return obj
    return None


def _too_long(errors: list[str], value: str | None, limit: int, pointer: str) -> None:
    if value is not None and len(value) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}]")


def _validate_element(el: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(el, dict):
        errors.append(f"must be an object [json-pointer:{pointer}]")
        return
    action_id = el.get("action_id")
    if isinstance(action_id, str):
        _too_long(errors, action_id, MAX_ACTION_ID, f"{pointer}/action_id")
    if el.get("type") == "button":
        text = _text_of(el.get("text"))
        if text is None:
            errors.append(f"should have required property 'text' [json-pointer:{pointer}]")
        else:
            _too_long(errors, text, MAX_BUTTON_TEXT, f"{pointer}/text/text")
        value = el.get("value")
        if isinstance(value, str):
            _too_long(errors, value, MAX_BUTTON_VALUE, f"{pointer}/value")


def validate_blocks(blocks: Any, max_blocks: int = MAX_MESSAGE_BLOCKS, base: str = "/blocks") -> list[str]:
    """Return Slack-style error strings for ``blocks`` (empty list when valid)."""
    errors: list[str] = []
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{base}]"]
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed [json-pointer:{base}]")
    for i, block in enumerate(blocks):
        p = f"{base}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"should have required property 'type' [json-pointer:{p}]")
            continue
        btype = block["type"]
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            _too_long(errors, block_id, MAX_BLOCK_ID, f"{p}/block_id")
        if btype == "section":
            text = _text_of(block.get("text"))
            fields = block.get("fields")
            if text is None and not fields:
                errors.append(f"must provide either text or fields [json-pointer:{p}]")
            _too_long(errors, text, MAX_SECTION_TEXT, f"{p}/text/text")
            if isinstance(fields, list):
                if len(fields) > MAX_SECTION_FIELDS:
                    errors.append(
                        f"no more than {MAX_SECTION_FIELDS} items allowed [json-pointer:{p}/fields]"
                    )
                for j, f in enumerate(fields):
                    _too_long(errors, _text_of(f), MAX_FIELD_TEXT, f"{p}/fields/{j}/text")
            if block.get("accessory") is not None:
                _validate_element(block["accessory"], f"{p}/accessory", errors)
        elif btype == "header":
            text = _text_of(block.get("text"))
            if text is None:
                errors.append(f"should have required property 'text' [json-pointer:{p}]")
            _too_long(errors, text, MAX_HEADER_TEXT, f"{p}/text/text")
        elif btype == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                errors.append(f"should have required property 'elements' [json-pointer:{p}]")
                continue
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                errors.append(
                    f"no more than {MAX_ACTIONS_ELEMENTS} items allowed [json-pointer:{p}/elements]"
                )
            for j, el in enumerate(elements):
                _validate_element(el, f"{p}/elements/{j}", errors)
        elif btype == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                errors.append(f"should have required property 'elements' [json-pointer:{p}]")
            elif len(elements) > MAX_CONTEXT_ELEMENTS:
                errors.append(
                    f"no more than {MAX_CONTEXT_ELEMENTS} items allowed [json-pointer:{p}/elements]"
                )
        elif btype == "input":
            if _text_of(block.get("label")) is None:
                errors.append(f"should have required property 'label' [json-pointer:{p}]")
            if block.get("element") is None:
                errors.append(f"should have required property 'element' [json-pointer:{p}]")
            else:
                _validate_element(block["element"], f"{p}/element", errors)
    return errors


def _validate_view(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    errors: list[str] = []
    vtype = view.get("type")
    if vtype not in ("modal", "home"):
        errors.append("must be one of modal, home [json-pointer:/view/type]")
    if vtype == "modal":
        title = _text_of(view.get("title"))
        if title is None:
            errors.append("should have required property 'title' [json-pointer:/view]")
        _too_long(errors, title, MAX_VIEW_TITLE, "/view/title/text")
        for key in ("submit", "close"):
            if view.get(key) is not None:
                _too_long(errors, _text_of(view[key]), MAX_VIEW_BUTTON, f"/view/{key}/text")
        max_blocks = MAX_MODAL_BLOCKS
    else:
        max_blocks = MAX_MODAL_BLOCKS
    pm = view.get("private_metadata")
    if isinstance(pm, str):
        _too_long(errors, pm, MAX_PRIVATE_METADATA, "/view/private_metadata")
    errors.extend(validate_blocks(view.get("blocks", []), max_blocks, "/view/blocks"))
    return errors


# ---------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------


def _plain(obj: Any) -> str:
    if isinstance(obj, dict):
        if obj.get("type") == "image":
            return f"[image: {obj.get('alt_text', '')}]"
        if "text" in obj:
            return _plain(obj["text"])
        if "elements" in obj:  # rich_text sections
            return "".join(_plain(e) for e in obj["elements"])
        if obj.get("type") == "user":
            return f"<@{obj.get('user_id', '')}>"
        if obj.get("type") == "link":
            return str(obj.get("url", ""))
        return ""
    if isinstance(obj, str):
        return obj
    return ""


def _render_element(el: Any) -> str:
    if not isinstance(el, dict):
        return ""
    etype = el.get("type")
    if etype == "button":
        return f"[{_plain(el.get('text'))}]"
    if etype in (
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
    ):
        label = _plain(el.get("initial_option", {}).get("text")) or _plain(el.get("placeholder")) or "select"
        return f"[{label} v]"
    if etype == "overflow":
        return "[...]"
    if etype == "plain_text_input":
        return f"[{el.get('initial_value', '') or '________'}]"
    if etype == "image":
        return f"[image: {el.get('alt_text', '')}]"
    return f"[{etype}]"


def render_message(message: dict) -> str:
    """Readable plain-text rendering of a message's blocks (or its text) for a terminal."""
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            blocks = []
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if btype == "header":
            lines.append(f"=== {_plain(block.get('text'))} ===")
        elif btype == "section":
            text = _plain(block.get("text"))
            accessory = block.get("accessory")
            if accessory:
                text = f"{text}  {_render_element(accessory)}".strip()
            if text:
                lines.append(text)
            fields = block.get("fields") or []
            for f in fields:
                lines.append(f"  {_plain(f)}")
        elif btype == "divider":
            lines.append("-" * 40)
        elif btype == "context":
            lines.append("  " + " | ".join(_plain(e) for e in block.get("elements", [])))
        elif btype == "actions":
            lines.append(" ".join(_render_element(e) for e in block.get("elements", [])))
        elif btype == "input":
            lines.append(f"{_plain(block.get('label'))}: {_render_element(block.get('element'))}")
        elif btype == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif btype == "rich_text":
            lines.append("".join(_plain(e) for e in block.get("elements", [])))
        else:
            lines.append(f"[{btype} block]")
    if not lines:
        lines.append(str(message.get("text") or ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------------


def _channel_ok(channel: Any) -> bool:
    return isinstance(channel, str) and len(channel) > 1 and channel[0] in "CGD"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


class FakeSlack:
    """A stateful fake Slack Web API: records every call, answers with Slack's JSON shapes and errors,
    enforces Block Kit limits."""

    def __init__(self, token: str = "xoxb-test", host: str = "127.0.0.1", port: int = 0):
        self.token = token
        self.host = host
        self.port = port
        self.calls: list[dict] = []
        self.ephemerals: list[dict] = []
        self.views: dict[str, dict] = {}
        self.channels: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.files: dict[str, dict] = {}  # id -> {name, title, length, content, channel, thread_ts, completed}
        self._messages: list[dict] = []
        self._lock = threading.RLock()
        self._ts_counter = 0
        self._view_counter = 0
        self._event_counter = 0
        self._user_ts = 0.0
        self._channel_counter = 0
        # Answers queued per method by rate_limit_next / fail_next: (HTTP status, body, headers).
        self._scripted: dict[str, list[tuple[int, dict, dict[str, str]]]] = {}
        self._response_urls: dict[str, dict] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.app = self._build_app()

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeSlack:
        if self._thread is not None and self._thread.is_alive():
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # older uvicorn
        self._server = server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name=f"FakeSlack:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("FakeSlack server failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started; call start() first")
        return f"http://{self.host}:{self.port}/"

    @property
    def base_url(self) -> str:
        """Web API base URL, with the trailing slash slack_sdk needs (it uses urljoin)."""
        return self.root_url + "api/"

    def response_url(self, key: str, channel: str | None = None, message_ts: str | None = None) -> str:
        """A URL accepting respond()/response_url posts. With channel (and message_ts), the posts also
        act on the fake's state: replace_original edits that message, delete_original removes it,
        response_type=in_channel posts a new one, otherwise an ephemeral is recorded."""
        with self._lock:
            self._response_urls[key] = {"channel": channel, "message_ts": message_ts}
        return f"{self.root_url}response_url/{key}"

    # ----------------------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["method"] == method]

    def messages(self, channel: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self._messages if channel is None or m["channel"] == channel]

    def message(self, channel: str, ts: str) -> dict | None:
        with self._lock:
            m = self._find(channel, ts)
            return dict(m) if m else None

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._messages.clear()
            self.ephemerals.clear()
            self.views.clear()
            self._scripted.clear()

    def fail_next(self, method: str, error: str = "internal_error") -> None:
        """The next call of `method` answers {"ok": false, "error": error}, as Slack does when it refuses."""
        self._script(method, 200, {"ok": False, "error": error}, {})

    def rate_limit_next(self, method: str, retry_after: int = 1) -> None:
        self._script(method, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(int(retry_after))})

    def _script(self, method: str, status: int, body: dict, headers: dict[str, str]) -> None:
        with self._lock:
            self._scripted.setdefault(method, []).append((status, body, headers))

    def add_channel(self, channel_id: str, name: str, **extra: Any) -> None:
        with self._lock:
            self.channels[channel_id] = {"id": channel_id, "name": name, **extra}

    def add_user(self, user_id: str, name: str, real_name: str | None = None, **extra: Any) -> None:
        with self._lock:
            self.users[user_id] = {"id": user_id, "name": name, "real_name": real_name or name, **extra}

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = list(users)

    # ----------------------------------------------------------------------------- people in channels: events

    def channel_named(self, name: str) -> dict | None:
        with self._lock:
            return next((c for c in self.channels.values() if c.get("name") == name), None)

    def envelope(self, event: dict) -> bytes:
        """An Events API ``event_callback`` body, as Slack POSTs it (JSON), with a fresh event id."""
        with self._lock:
            self._event_counter += 1
            n = self._event_counter
        return json.dumps({
            "token": "fake-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": f"Ev{n:08d}", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
            "is_ext_shared_channel": False, "event_context": f"ctx-{n}",
        }).encode()

    def say(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> tuple[dict, bytes]:
        """``user`` posts ``text``: the message is stored (a member's post into a live channel) and the
        ``message`` event Slack would send is returned with it."""
        with self._lock:
            c = self.channels.get(channel)
            if c is not None and c.get("is_archived"):
                raise AssertionError(f"{channel} is archived: nobody can post there")
            m = self._new_message(channel, text, None, thread_ts)
            # People post now: a wall-clock ts (unique, rising), so the message sorts among the incident's
            # real events the way a real one would.
            self._user_ts = max(round(time.time(), 6), self._user_ts + 0.000001)
            m["user"], m["ts"] = user, f"{self._user_ts:.6f}"
        event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": m["ts"],
                 "channel_type": "channel", "event_ts": m["ts"], "team": TEAM_ID}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return m, self.envelope(event)

    def edit(self, channel: str, ts: str, text: str) -> bytes:
        with self._lock:
            m = self._find(channel, ts)
            assert m is not None, f"no message {ts} in {channel}"
            m["text"], m["edited"] = text, True
            edited_ts = self._next_ts()
        return self.envelope({"type": "message", "subtype": "message_changed", "channel": channel, "hidden": True,
                              "ts": edited_ts, "event_ts": edited_ts, "channel_type": "channel",
                              "message": {"type": "message", "user": m["user"], "text": text, "ts": ts,
                                          "edited": {"user": m["user"], "ts": edited_ts}}})

    def delete(self, channel: str, ts: str) -> bytes:
        with self._lock:
            self._messages = [m for m in self._messages if not (m["channel"] == channel and m["ts"] == ts)]
            now = self._next_ts()
        return self.envelope({"type": "message", "subtype": "message_deleted", "channel": channel, "hidden": True,
                              "ts": now, "deleted_ts": ts, "event_ts": now, "channel_type": "channel"})

    def react(self, channel: str, ts: str, user: str, reaction: str = "pushpin") -> bytes:
        with self._lock:
            m = self._find(channel, ts)
            assert m is not None, f"no message {ts} in {channel}"
            m.setdefault("reactions", {}).setdefault(reaction, []).append(user)
            now = self._next_ts()
        return self.envelope({"type": "reaction_added", "user": user, "reaction": reaction,
                              "item_user": m["user"], "item": {"type": "message", "channel": channel, "ts": ts},
                              "event_ts": now})

    def pin(self, channel: str, ts: str, user: str) -> bytes:
        with self._lock:
            m = self._find(channel, ts)
            assert m is not None, f"no message {ts} in {channel}"
            m["pinned"] = True
            now = self._next_ts()
        message = {"type": "message", "user": m["user"], "text": m["text"], "ts": ts}
        return self.envelope({"type": "pin_added", "user": user, "channel_id": channel, "event_ts": now,
                              "item": {"type": "message", "channel": channel, "created_by": user,
                                       "message": message}})

    @staticmethod
    def url_verification(challenge: str = "fake-challenge") -> bytes:
        return json.dumps({"token": "fake-verification-token", "challenge": challenge,
                           "type": "url_verification"}).encode()

    def _match(self, predicate: Callable[[dict], bool], start: int) -> dict | None:
        with self._lock:
            snapshot = list(self.calls[start:])
        for call in snapshot:
            try:
                if predicate(call):
                    return call
            except (KeyError, TypeError, AttributeError, IndexError):
                continue
        return None

    def _timeout_error(self, timeout: float) -> AssertionError:
        with self._lock:
            recent = self.calls[-15:]
        lines = [f"  {c['method']} {json.dumps(c['args'], default=str)[:200]}" for c in recent]
        return AssertionError(
            f"no matching Slack call within {timeout}s; recent calls ({len(recent)}):\n"
            + ("\n".join(lines) or "  (none)")
        )

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10.0, start: int = 0) -> dict:
        """Block until a recorded call (from index ``start``) matches. Don't use from the event loop
        that runs the code under test; use :meth:`await_for` there."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._match(predicate, start)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise self._timeout_error(timeout)
            time.sleep(0.02)

    async def await_for(
        self, predicate: Callable[[dict], bool], timeout: float = 10.0, start: int = 0
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self._match(predicate, start)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise self._timeout_error(timeout)
            await asyncio.sleep(0.02)

    # ----------------------------------------------------------------------------- HTTP layer

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="FakeSlack", docs_url=None, redoc_url=None, openapi_url=None)

        @app.api_route("/api/{method}", methods=["GET", "POST"])
        async def api(method: str, request: Request) -> Response:
            args = await _parse_args(request)
            return self._handle(method, args, request.headers.get("authorization"))

        @app.post("/upload/{file_id}")
        async def upload(file_id: str, request: Request) -> Response:
            """Step 2 of files.uploadV2: the bytes, POSTed to the URL files.getUploadURLExternal gave."""
            raw = await request.body()
            if "multipart" in request.headers.get("content-type", ""):
                form = await request.form()
                part = next((v for v in form.values() if not isinstance(v, str)), None)
                raw = await part.read() if part is not None else b""
            with self._lock:
                f = self.files.get(file_id)
                if f is None or f["completed"]:
                    return PlainTextResponse("invalid upload url", status_code=404)
                f["content"] = raw
            self._record("files.upload", {"file_id": file_id, "bytes": len(raw)}, "OK - 200")
            return PlainTextResponse(f"OK - {len(raw)}")

        @app.post("/response_url/{key}")
        async def response_url(key: str, request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = dict(parse_qsl(raw.decode("utf-8", "replace")))
            status, text = self._handle_response_url(key, body)
            return PlainTextResponse(text, status_code=status)

        return app

    def _record(self, method: str, args: dict, response: Any, status: int = 200, **extra: Any) -> None:
        with self._lock:
            self.calls.append(
                {
                    "method": method,
                    "args": args,
                    "at": time.time(),
                    "status": status,
                    "response": response,
                    **extra,
                }
            )

    def _handle(self, method: str, args: dict, authorization: str | None) -> Response:
        token = args.pop("token", None)
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        with self._lock:
            queued = self._scripted.get(method)
            scripted = queued.pop(0) if queued else None
        if scripted is not None:
            status, body, headers = scripted
            self._record(method, args, body, status=status)
            return JSONResponse(body, status_code=status, headers=headers)
        if token != self.token:
            # Real Slack says not_authed for a missing token; both are auth failures with HTTP 200.
            body = {"ok": False, "error": "invalid_auth"}
        else:
            handler = _HANDLERS.get(method)
            if handler is None:
                body = {"ok": False, "error": "unknown_method", "req_method": method}
            else:
                try:
                    with self._lock:
                        body = {"ok": True, **handler(self, args)}
                except _SlackError as e:
                    body = {"ok": False, "error": e.error, **e.extra}
        self._record(method, args, body)
        return JSONResponse(body, headers={"X-Slack-Req-Id": f"fake-{len(self.calls)}"})

    def _handle_response_url(self, key: str, body: dict) -> tuple[int, str]:
        with self._lock:
            binding = self._response_urls.get(key, {})
        if "blocks" in body:
            if isinstance(body["blocks"], str):
                try:
                    body["blocks"] = json.loads(body["blocks"])
                except ValueError:
                    pass
            errors = validate_blocks(body["blocks"])
            if errors:
                self._record("response_url", body, "invalid_blocks", status=400, key=key)
                return 400, "invalid_blocks"
        if not body.get("text") and not body.get("blocks") and not _truthy(body.get("delete_original")):
            self._record("response_url", body, "no_text", status=400, key=key)
            return 400, "no_text"
        with self._lock:
            channel, ts = binding.get("channel"), binding.get("message_ts")
            if channel:
                if _truthy(body.get("delete_original")) and ts:
                    self._messages = [
                        m for m in self._messages if not (m["channel"] == channel and m["ts"] == ts)
                    ]
                elif _truthy(body.get("replace_original")) and ts and self._find(channel, ts):
                    m = self._find(channel, ts)
                    assert m is not None
                    m["text"] = body.get("text", "")
                    m["blocks"] = body.get("blocks", [])
                    m["edited"] = True
                elif body.get("response_type") == "in_channel":
                    self._new_message(
                        channel, body.get("text", ""), body.get("blocks"), body.get("thread_ts")
                    )
                else:
                    self.ephemerals.append(
                        {
                            "channel": channel,
                            "user": None,
                            "ts": self._next_ts(),
                            "text": body.get("text", ""),
                            "blocks": body.get("blocks") or [],
                        }
                    )
        self._record("response_url", body, "ok", key=key)
        return 200, "ok"

    # ----------------------------------------------------------------------------- state helpers

    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = self._ts_counter * 100
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _find(self, channel: str, ts: str) -> dict | None:
        for m in self._messages:
            if m["channel"] == channel and m["ts"] == ts:
                return m
        return None

    def _new_message(self, channel: str, text: str, blocks: Any, thread_ts: str | None) -> dict:
        m = {
            "channel": channel,
            "ts": self._next_ts(),
            "text": text or "",
            "blocks": blocks or [],
            "thread_ts": thread_ts,
            "user": BOT_USER_ID,
            "edited": False,
        }
        self._messages.append(m)
        return m


async def _parse_args(request: Request) -> dict:
    args: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    if raw:
        if "json" in ctype:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {}
            if isinstance(parsed, dict):
                args.update(parsed)
        elif "multipart" in ctype:
            form = await request.form()
            for k, v in form.items():
                args[k] = v if isinstance(v, str) else f"<file {getattr(v, 'filename', '')}>"
        else:
            args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    for field in _JSON_FIELDS:
        if isinstance(args.get(field), str) and args[field]:
            try:
                args[field] = json.loads(args[field])
            except ValueError:
                pass  # left as a string; validation reports it
    return args


# ---------------------------------------------------------------------------------------------------
# Method handlers (run under FakeSlack._lock; return the body minus "ok": True, or raise _SlackError)
# ---------------------------------------------------------------------------------------------------


def _require_channel(args: dict) -> str:
    channel = args.get("channel")
    if not _channel_ok(channel):
        raise _SlackError("channel_not_found")
    return channel


def _check_message_content(args: dict, require: bool = True) -> None:
    blocks = args.get("blocks")
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            raise _SlackError("invalid_blocks", errors=errors, response_metadata={"messages": errors})
    if require and not args.get("text") and not blocks and not args.get("attachments"):
        raise _SlackError("no_text")


def _message_payload(m: dict, app_id: str = APP_ID) -> dict:
    out = {
        "type": "message",
        "user": m["user"],
        "bot_id": BOT_ID,
        "app_id": app_id,
        "text": m["text"],
        "ts": m["ts"],
        "team": TEAM_ID,
        "blocks": m["blocks"],
    }
    if m.get("thread_ts"):
        out["thread_ts"] = m["thread_ts"]
    return out


def _auth_test(fake: FakeSlack, args: dict) -> dict:
    return {
        "url": "https://opsdraft-fake.slack.com/",
        "team": "OpsDraft Fake",
        "user": "opsdraft",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _postable(fake: FakeSlack, channel: str) -> None:
    """Real Slack refuses posts to an archived channel, and from a bot that is not a member of a channel it
    knows the members of (channels made with add_channel and no members list are open to the bot)."""
    c = fake.channels.get(channel)
    if c is None:
        return
    if c.get("is_archived"):
        raise _SlackError("is_archived")
    if "members" in c and BOT_USER_ID not in c["members"]:
        raise _SlackError("not_in_channel")


def _chat_post_message(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    _postable(fake, channel)
    _check_message_content(args)
    m = fake._new_message(channel, args.get("text", ""), args.get("blocks"), args.get("thread_ts"))
    return {"channel": channel, "ts": m["ts"], "message": _message_payload(m)}


def _chat_update(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    _postable(fake, channel)
    ts = args.get("ts")
    if not ts:
        raise _SlackError("invalid_arguments", response_metadata={"messages": ["missing required field: ts"]})
    _check_message_content(args, require=False)
    m = fake._find(channel, str(ts))
    if m is None:
        raise _SlackError("message_not_found")
    if "text" not in args and "blocks" not in args and "attachments" not in args:
        raise _SlackError("no_text")
    if "text" in args:
        m["text"] = args["text"] or ""
    if "blocks" in args:
        m["blocks"] = args["blocks"] or []
    m["edited"] = True
    return {"channel": channel, "ts": m["ts"], "text": m["text"], "message": _message_payload(m)}


def _chat_post_ephemeral(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    user = args.get("user")
    if not isinstance(user, str) or not user or user[0] not in "UW":
        raise _SlackError("user_not_found")
    _check_message_content(args)
    ts = fake._next_ts()
    fake.ephemerals.append(
        {
            "channel": channel,
            "user": user,
            "ts": ts,
            "text": args.get("text", ""),
            "blocks": args.get("blocks") or [],
            "thread_ts": args.get("thread_ts"),
        }
    )
    return {"message_ts": ts}


def _chat_get_permalink(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    ts = str(args.get("message_ts") or "")
    if not fake._find(channel, ts):
        raise _SlackError("message_not_found")
    return {
        "channel": channel,
        "permalink": f"https://opsdraft-fake.slack.com/archives/{channel}/p{ts.replace('.', '')}",
    }


def _view_payload(fake: FakeSlack, view: dict, view_id: str, previous: dict | None) -> dict:
    fake._view_counter += 1
    return {
        "id": view_id,
        "team_id": TEAM_ID,
        "type": view.get("type", "modal"),
        "title": view.get("title"),
        "submit": view.get("submit"),
        "close": view.get("close"),
        "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "external_id": view.get("external_id", ""),
        "state": {"values": {}},
        "hash": f"{int(time.time())}.fake{fake._view_counter}",
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)),
        "root_view_id": (previous or {}).get("root_view_id", view_id),
        "previous_view_id": (previous or {}).get("id") if previous else None,
        "app_id": APP_ID,
        "bot_id": BOT_ID,
    }


def _checked_view(args: dict) -> dict:
    view = args.get("view")
    if view is None:
        raise _SlackError(
            "invalid_arguments", response_metadata={"messages": ["missing required field: view"]}
        )
    errors = _validate_view(view)
    if errors:
        msgs = [f"[ERROR] {e}" for e in errors]
        raise _SlackError("invalid_arguments", errors=errors, response_metadata={"messages": msgs})
    return view


def _views_open(fake: FakeSlack, args: dict) -> dict:
    if not args.get("trigger_id") and not args.get("interactivity_pointer"):
        raise _SlackError(
            "invalid_arguments", response_metadata={"messages": ["missing required field: trigger_id"]}
        )
    view = _checked_view(args)
    view_id = f"V{fake._view_counter + 1:08d}"
    payload = _view_payload(fake, view, view_id, None)
    payload["trigger_id"] = args.get("trigger_id")
    fake.views[view_id] = payload
    return {"view": payload}


def _views_push(fake: FakeSlack, args: dict) -> dict:
    if not args.get("trigger_id"):
        raise _SlackError(
            "invalid_arguments", response_metadata={"messages": ["missing required field: trigger_id"]}
        )
    view = _checked_view(args)
    view_id = f"V{fake._view_counter + 1:08d}"
    payload = _view_payload(fake, view, view_id, None)
    fake.views[view_id] = payload
    return {"view": payload}


def _views_update(fake: FakeSlack, args: dict) -> dict:
    view = _checked_view(args)
    view_id = args.get("view_id")
    external_id = args.get("external_id")
    existing = None
    if view_id:
        existing = fake.views.get(view_id)
    elif external_id:
        existing = next((v for v in fake.views.values() if v.get("external_id") == external_id), None)
    else:
        raise _SlackError(
            "invalid_arguments", response_metadata={"messages": ["either view_id or external_id is required"]}
        )
    if existing is None:
        raise _SlackError("not_found")
    if args.get("hash") and args["hash"] != existing["hash"]:
        raise _SlackError("hash_conflict")
    payload = _view_payload(fake, view, existing["id"], None)
    payload["root_view_id"] = existing["root_view_id"]
    fake.views[existing["id"]] = payload
    return {"view": payload}


def _conversations_info(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    known = fake.channels.get(channel, {})
    return {
        "channel": {
            "id": channel,
            "name": known.get("name", channel.lower()),
            "is_channel": channel[0] == "C",
            "is_group": channel[0] == "G",
            "is_im": channel[0] == "D",
            "is_private": channel[0] in "GD",
            "is_archived": bool(known.get("is_archived")),
            "is_member": BOT_USER_ID in known.get("members", [BOT_USER_ID]),
            "created": 1700000000,
            **{k: v for k, v in known.items() if k not in ("id", "name", "members", "is_archived")},
        }
    }


def _users_info(fake: FakeSlack, args: dict) -> dict:
    user = args.get("user")
    if not isinstance(user, str) or not user or user[0] not in "UW":
        raise _SlackError("user_not_found")
    known = fake.users.get(user, {})
    name = known.get("name", user.lower())
    real = known.get("real_name", name)
    return {
        "user": {
            "id": user,
            "team_id": TEAM_ID,
            "name": name,
            "real_name": real,
            "deleted": False,
            "is_bot": user == BOT_USER_ID,
            "tz": "UTC",
            "tz_offset": 0,
            "profile": {"real_name": real, "display_name": name, "email": f"{name}@example.invalid"},
            **{k: v for k, v in known.items() if k not in ("id", "name", "real_name")},
        }
    }


def _usergroups_users_list(fake: FakeSlack, args: dict) -> dict:
    group = args.get("usergroup")
    if not group:
        raise _SlackError("invalid_arguments", response_metadata={"messages": ["missing required field: usergroup"]})
    if group not in fake.usergroups:
        raise _SlackError("no_such_subteam")
    return {"users": list(fake.usergroups[group])}


MAX_FILE_BYTES = 1024 * 1024 * 1024


def _files_get_upload_url_external(fake: FakeSlack, args: dict) -> dict:
    name, length = args.get("filename"), str(args.get("length") or "")
    if not name or not length.isdigit():
        raise _SlackError("invalid_arguments", response_metadata={"messages": ["filename and length are required"]})
    if int(length) > MAX_FILE_BYTES:
        raise _SlackError("file_too_large")
    file_id = f"F{len(fake.files) + 1:08d}"
    fake.files[file_id] = {"id": file_id, "name": name, "title": name, "length": int(length), "content": None,
                           "channel": None, "thread_ts": None, "completed": False}
    return {"upload_url": f"{fake.root_url}upload/{file_id}", "file_id": file_id}


def _files_complete_upload_external(fake: FakeSlack, args: dict) -> dict:
    try:
        items = json.loads(args["files"]) if isinstance(args.get("files"), str) else args.get("files")
    except ValueError:
        items = None
    if not isinstance(items, list) or not items:
        raise _SlackError("invalid_arguments", response_metadata={"messages": ["files must be a JSON array"]})
    channel = args.get("channel_id") or None
    if channel is not None and not _channel_ok(channel):
        raise _SlackError("channel_not_found")
    thread_ts = args.get("thread_ts") or None
    if thread_ts and not fake._find(channel or "", thread_ts):
        raise _SlackError("invalid_thread_ts")
    out = []
    for item in items:
        f = fake.files.get(item.get("id"))
        if f is None or f["completed"]:
            raise _SlackError("file_not_found")
        if f["content"] is None or len(f["content"]) != f["length"]:
            raise _SlackError("file_upload_size_mismatch" if f["content"] is not None else "file_not_uploaded")
        f.update(completed=True, title=item.get("title") or f["name"], channel=channel, thread_ts=thread_ts)
        out.append({"id": f["id"], "name": f["name"], "title": f["title"], "size": f["length"],
                    "channels": [channel] if channel else []})
    if channel:
        m = fake._new_message(channel, args.get("initial_comment") or "", None, thread_ts)
        m["files"] = [o["id"] for o in out]
    return {"files": out}


# ---------------------------------------------------------------------------------------------------
# Channels: create, invite, archive, history, pins, reactions, with Slack's rules and errors
# ---------------------------------------------------------------------------------------------------

MAX_CHANNEL_NAME = 80


def _check_channel_name(name: Any) -> str:
    """Slack's rules: 1-80 characters, lowercase letters, digits, hyphens, underscores (and some unicode,
    which opsdraft never makes); not only punctuation."""
    if not isinstance(name, str) or not name:
        raise _SlackError("invalid_name_required")
    if len(name) > MAX_CHANNEL_NAME:
        raise _SlackError("invalid_name_maxlength")
    if any(not (ch.islower() or ch.isdigit() or ch in "-_") for ch in name):
        raise _SlackError("invalid_name_specials")
    if all(ch in "-_" for ch in name):
        raise _SlackError("invalid_name_punctuation")
    return name


def _live_channel(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    c = fake.channels.get(channel)
    if c is None:
        raise _SlackError("channel_not_found")
    return c


def _conversations_create(fake: FakeSlack, args: dict) -> dict:
    name = _check_channel_name(args.get("name"))
    if any(c.get("name") == name for c in fake.channels.values()):  # archived ones keep their names too
        raise _SlackError("name_taken")
    fake._channel_counter += 1
    private = _truthy(args.get("is_private"))
    cid = f"{'G' if private else 'C'}0INC{fake._channel_counter:04d}"
    fake.channels[cid] = {"id": cid, "name": name, "members": [BOT_USER_ID], "is_archived": False,
                          "is_private": private, "creator": BOT_USER_ID, "pins": []}
    return {"channel": {"id": cid, "name": name, "is_channel": not private, "is_group": private,
                        "is_private": private, "is_archived": False, "is_member": True,
                        "creator": BOT_USER_ID, "created": int(time.time())}}


def _conversations_invite(fake: FakeSlack, args: dict) -> dict:
    c = _live_channel(fake, args)
    if c.get("is_archived"):
        raise _SlackError("is_archived")
    members = c.setdefault("members", [BOT_USER_ID])
    if BOT_USER_ID not in members:
        raise _SlackError("not_in_channel")
    users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
    if not users:
        raise _SlackError("no_user")
    for user in users:
        if user == BOT_USER_ID:
            raise _SlackError("cant_invite_self")
        if user[0] not in "UW" or (fake.users and user not in fake.users):
            raise _SlackError("user_not_found", errors=[{"user": user, "ok": False, "error": "user_not_found"}])
    fresh = [u for u in users if u not in members]
    if not fresh:
        raise _SlackError("already_in_channel")
    members += fresh
    return {"channel": {"id": c["id"], "name": c["name"], "is_member": True}}


def _conversations_archive(fake: FakeSlack, args: dict) -> dict:
    c = _live_channel(fake, args)
    if c.get("is_archived"):
        raise _SlackError("already_archived")
    if BOT_USER_ID not in c.get("members", [BOT_USER_ID]):
        raise _SlackError("not_in_channel")
    c["is_archived"] = True
    return {}


def _conversations_history(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    if BOT_USER_ID not in fake.channels.get(channel, {}).get("members", [BOT_USER_ID]):
        raise _SlackError("not_in_channel")
    latest = float(args.get("latest") or "inf")
    inclusive = _truthy(args.get("inclusive"))
    found = [m for m in fake._messages if m["channel"] == channel and not m.get("thread_ts")
             and (float(m["ts"]) < latest or (inclusive and float(m["ts"]) == latest))]
    found.sort(key=lambda m: float(m["ts"]), reverse=True)
    limit = int(args.get("limit") or 100)
    out = []
    for m in found[:limit]:
        msg = {"type": "message", "user": m["user"], "text": m["text"], "ts": m["ts"]}
        if m["user"] == BOT_USER_ID:
            msg["bot_id"] = BOT_ID
        out.append(msg)
    return {"messages": out, "has_more": len(found) > limit}


def _pins_add(fake: FakeSlack, args: dict) -> dict:
    c = _live_channel(fake, args)
    ts = str(args.get("timestamp") or "")
    if c.get("is_archived"):
        raise _SlackError("is_archived")
    if BOT_USER_ID not in c.get("members", [BOT_USER_ID]):
        raise _SlackError("not_in_channel")
    m = fake._find(c["id"], ts)
    if m is None:
        raise _SlackError("message_not_found")
    if m.get("pinned"):
        raise _SlackError("already_pinned")
    m["pinned"] = True
    return {}


def _reactions_add(fake: FakeSlack, args: dict) -> dict:
    channel = _require_channel(args)
    m = fake._find(channel, str(args.get("timestamp") or ""))
    if m is None:
        raise _SlackError("message_not_found")
    name = str(args.get("name") or "")
    if not name:
        raise _SlackError("invalid_name")
    users = m.setdefault("reactions", {}).setdefault(name, [])
    if BOT_USER_ID in users:
        raise _SlackError("already_reacted")
    users.append(BOT_USER_ID)
    return {}


_HANDLERS: dict[str, Callable[[FakeSlack, dict], dict]] = {
    "conversations.create": _conversations_create,
    "conversations.invite": _conversations_invite,
    "conversations.archive": _conversations_archive,
    "conversations.history": _conversations_history,
    "pins.add": _pins_add,
    "reactions.add": _reactions_add,
    "usergroups.users.list": _usergroups_users_list,
    "files.getUploadURLExternal": _files_get_upload_url_external,
    "files.completeUploadExternal": _files_complete_upload_external,
    "auth.test": _auth_test,
    "chat.postMessage": _chat_post_message,
    "chat.update": _chat_update,
    "chat.postEphemeral": _chat_post_ephemeral,
    "chat.getPermalink": _chat_get_permalink,
    "views.open": _views_open,
    "views.update": _views_update,
    "views.push": _views_push,
    "conversations.info": _conversations_info,
    "users.info": _users_info,
}
