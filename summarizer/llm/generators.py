"""Text generators: the protocol drafts use, a local transformers model, and an OpenAI-compatible server.

Both decode greedily (the same facts give the same draft). Neither reads the environment: loader.load_generator
passes in what settings say.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Per-backend default of settings.model_timeout_s (OPSDRAFT_MODEL_TIMEOUT_S) when it is unset.
SERVER_TIMEOUT_S = 120.0  # per server call; after it the caller makes the draft without the model
LOCAL_MAX_TIME_S = 600.0  # of in-process generation; after it the text written so far is kept (tidy_prose trims)


@runtime_checkable
class TextGenerator(Protocol):
    name: str

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str: ...


@dataclass
class _Request:
    messages: list[dict[str, str]]
    max_new_tokens: int
    done: threading.Event = field(default_factory=threading.Event)
    result: str = ""
    error: BaseException | None = None


class HFGenerator:
    """A transformers causal LM with its tokenizer; greedy decoding.

    Calls from several threads at once are batched: the caller that finds the model free runs everything queued
    by then as one left-padded batch (up to `max_batch`), and the others wait for their answer. Decoding one
    token reads every weight once whatever the batch size, so a batch of four costs little more than one.
    Prompt-lookup decoding works on one sequence only: a request found alone uses it, concurrent ones are batched
    without it. Assisted decoding runs each request alone.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str, max_batch: int | None = None, *,
                 max_time_s: float = LOCAL_MAX_TIME_S, prompt_lookup: int = 0):
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = next(model.parameters()).device
        self._lock = threading.Lock()  # held by the thread running the model
        self._queue: list[_Request] = []
        self._queue_lock = threading.Lock()
        self.max_batch = max_batch or 8  # concurrent callers are bounded by settings.model_parallel_drafts
        self.batch_sizes: list[int] = []  # of the batches run so far (for tests and benchmarks)
        self._torch = torch
        self.last_tokens_per_s: float | None = None
        self.last_new_tokens = 0
        # A draft must arrive: generation stops after this long and keeps what was written.
        self.max_time_s = max_time_s
        # Prompt-lookup decoding: drafts copy event text from the prompt, so n-grams found there are
        # verified in one forward pass instead of one pass per token. Same greedy output in float32 and bfloat16
        # (int8's and int4's few-row products may round differently from their one-row ones). 0 turns it off;
        # load_generator sets it from settings.model_prompt_lookup, on by default for int4, where checking 4 tokens
        # costs little more than decoding one. Used when a request runs alone: concurrent requests are batched.
        self.prompt_lookup = prompt_lookup
        # Assisted decoding: a small model (another HFGenerator) proposes tokens that this one verifies in one
        # pass; same greedy output. Tokenizers may differ (transformers' universal assisted decoding).
        self.assistant: HFGenerator | None = None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        gen_cfg = getattr(model, "generation_config", None)
        if gen_cfg is not None:  # greedy: drop sampling knobs so transformers does not warn
            gen_cfg.do_sample = False
            for attr in ("temperature", "top_p", "top_k"):
                if hasattr(gen_cfg, attr):
                    setattr(gen_cfg, attr, None)

    def _encode(self, batch: list[list[dict[str, str]]]):
        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues at the right edge of every row
        if getattr(tok, "chat_template", None):
            texts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in batch]
        else:  # plain fallback for models without a chat template
            texts = ["\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in msgs) + "\n\nASSISTANT:"
                     for msgs in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in enc.items()}

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str:
        req = _Request(messages, max_new_tokens)
        with self._queue_lock:
            self._queue.append(req)
        while not req.done.is_set():
            if not self._lock.acquire(timeout=0.05):
                continue  # another thread is running the model; our request may be in its next batch
            try:
                with self._queue_lock:
                    size = 1 if self.assistant else self.max_batch
                    batch, self._queue = self._queue[:size], self._queue[size:]
                if batch:
                    self._run(batch)
            finally:
                self._lock.release()
        if req.error is not None:
            raise req.error
        return req.result

    def _decoding_options(self, batch_size: int) -> dict[str, Any]:
        """Assisted or prompt-lookup decoding where they apply; plain greedy otherwise."""
        if self.assistant is not None:
            extra: dict[str, Any] = {"assistant_model": self.assistant.model}
            if self.assistant.tokenizer.get_vocab() != self.tokenizer.get_vocab():  # universal assisted
                extra |= {"tokenizer": self.tokenizer, "assistant_tokenizer": self.assistant.tokenizer}
            return extra
        if self.prompt_lookup > 0 and batch_size == 1:
            return {"prompt_lookup_num_tokens": self.prompt_lookup}
        return {}

    def _run(self, batch: list[_Request]) -> None:
        torch = self._torch
        try:
            with torch.inference_mode():
                enc = self._encode([r.messages for r in batch])
                n_in = enc["input_ids"].shape[1]
                extra = self._decoding_options(len(batch))
                start = time.perf_counter()
                out = self.model.generate(
                    **enc,
                    **extra,
                    max_new_tokens=max(r.max_new_tokens for r in batch),
                    max_time=float(self.max_time_s),
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                    repetition_penalty=1.1,  # still greedy; keeps small models from looping
                )
                elapsed = time.perf_counter() - start
            self.batch_sizes.append(len(batch))
            pad = self.tokenizer.pad_token_id
            for row, r in zip(out, batch, strict=True):
                new = row[n_in:n_in + r.max_new_tokens]
                n_new = int((new != pad).sum())
                r.result = self.tokenizer.decode(new, skip_special_tokens=True).strip()
                self.last_new_tokens = n_new
            self.last_tokens_per_s = self.last_new_tokens / elapsed if elapsed > 0 else None
        except BaseException as exc:  # every waiting caller gets the error, not a hang
            for r in batch:
                r.error = exc
        finally:
            for r in batch:
                r.done.set()


class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible HTTP server, greedy; calls run concurrently (no lock).

    ``api_key`` (settings.model_api_key) is sent as a bearer token when set; ``timeout_s`` (settings.model_timeout_s,
    default SERVER_TIMEOUT_S) bounds each call, after which the caller falls back to the deterministic draft.
    """

    def __init__(self, base_url: str, model: str = "default", timeout_s: float | None = None,
                 api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s or SERVER_TIMEOUT_S
        self.api_key = api_key or ""
        self.name = f"{model} @ {self.base_url}"
        self.last_tokens_per_s: float | None = None

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str:
        import urllib.error
        import urllib.request

        body = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", json.dumps(body).encode(), headers)
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - configured URL
                data = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"model server answered {exc.code}: {exc.read()[:200]!r}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise RuntimeError(f"model server {self.base_url} unreachable or too slow: {exc}") from exc
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise RuntimeError(f"model server gave an unexpected answer: {str(data)[:200]}") from exc
        used = (data.get("usage") or {}).get("completion_tokens")
        elapsed = time.perf_counter() - start
        self.last_tokens_per_s = used / elapsed if used and elapsed > 0 else None
        return text.strip()
