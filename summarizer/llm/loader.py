"""The generator for a model setting: none, a model server, or an in-process model loaded once per process and
prepared as settings say (dtype, prompt lookup, time limit)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from opsdraft.settings import SettingsError
from summarizer.config import current_settings
from summarizer.cpukernels import rows_cost_ratio, use_blocked_linear
from summarizer.llm.generators import (
    LOCAL_MAX_TIME_S,
    SERVER_TIMEOUT_S,
    HFGenerator,
    OpenAIGenerator,
    TextGenerator,
)
from summarizer.llm.provisioning import (
    ModelUnavailable,
    Progress,
    default_dtype,
    load_model,
    quantize,
    require_runtime,
    resolve_dtype,
)

if TYPE_CHECKING:
    from opsdraft.settings import Settings

# Checking 4 tokens cost 0.9-1.3x one with AVX512 kernels (lookup paid), 1.8-1.9x with AVX2.
LOOKUP_MAX_COST = 1.4

# In-process models by (setting, cache dir, format): loading one takes seconds to minutes and gigabytes.
_CACHE: dict[tuple[str, str, str], HFGenerator] = {}
_CACHE_LOCK = threading.Lock()
_LOWERED: list[int] = []  # the nice added to this process, once (a priority lowered cannot be raised back)


def load_generator(
    model: str,
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    dtype: str | None = None,
    settings: Settings | None = None,
) -> TextGenerator | None:
    """Load (or reuse) the generator for a ``model`` setting. Returns None for ``"none"``.

    ``settings`` give a server's API key and model name, the time limit, the dtype (where ``dtype`` is not given)
    and prompt lookup; without them, the current settings. Raises ModelUnavailable with a fix when the model or
    its runtime is missing.
    """
    setting = (model or "none").strip()
    if setting.lower() in {"none", "off", ""}:
        return None
    if settings is None:
        settings = _current_settings()
    if setting.lower().startswith(("http://", "https://")):
        return _server_generator(setting, settings)
    require_runtime()
    cache_dir = Path(cache_dir).expanduser().resolve()
    dtype = dtype or settings.llm_dtype or default_dtype()
    quantized = dtype if dtype in ("int4", "int8") else None
    torch_dtype = resolve_dtype("float32" if quantized else dtype)  # int4 and int8 are made from the float32 copy
    key = (setting, str(cache_dir), quantized or str(torch_dtype))
    with _CACHE_LOCK:
        gen = _CACHE.get(key)
        if gen is None:
            try:
                gen = _prepare(setting, cache_dir, torch_dtype, quantized, settings, progress)
            except OSError as exc:  # unwritable cache dir, disk full, unreadable parts...
                raise ModelUnavailable(
                    f"could not prepare model {setting!r} in {cache_dir}: {exc}; check that the model "
                    "cache directory is writable and has ~5 GB free, or set the model to 'none'"
                ) from exc
            _CACHE[key] = gen
        return gen


def prompt_lookup_setting(default: int | Callable[[], int], value: str | None = None) -> int:
    """settings.model_prompt_lookup (OPSDRAFT_MODEL_PROMPT_LOOKUP): tokens proposed per check, 0 for off, "auto"
    (or empty) for `default` (a callable is called only then: the int4 default times the kernels). Without
    `value`, the current settings' one."""
    if value is None:
        value = _current_settings().model_prompt_lookup
    value = value.strip().lower()
    if value in ("", "auto"):
        return default() if callable(default) else default
    if not value.isdigit():
        raise ModelUnavailable(f"OPSDRAFT_MODEL_PROMPT_LOOKUP={value!r}: use a number of tokens, 0 (off) or auto")
    return int(value)


def _current_settings() -> Settings:
    """The current settings; a wrong one means the model cannot be set up, so it is reported as such."""
    try:
        return current_settings()
    except SettingsError as exc:
        raise ModelUnavailable(str(exc)) from None


def _server_generator(setting: str, settings: Settings) -> OpenAIGenerator:
    url, _, model = setting.partition("#")
    return OpenAIGenerator(
        url,
        model or settings.model_server_model,
        timeout_s=settings.model_timeout_s or SERVER_TIMEOUT_S,
        api_key=settings.model_api_key,
    )


def _prepare(
    setting: str, cache_dir: Path, torch_dtype, quantized: str | None, settings: Settings, progress: Progress | None
) -> HFGenerator:
    """Load the model and put it in the format and decoding mode settings ask for."""
    lower_priority(settings.model_nice)  # before loading: converting and timing the kernels take every core too
    gen = load_model(setting, cache_dir, torch_dtype, progress)
    if quantized:
        quantize(gen, quantized)
    if gen.device.type == "cpu":  # float layers (the quantized models' heads too) decode on every core
        use_blocked_linear(gen.model)
    # Prompt lookup pays off in int4 where the kernels check 4 tokens cheaply: timed, but only for "auto".
    default = (lambda: _lookup_default(gen)) if quantized == "int4" else 0
    gen.prompt_lookup = prompt_lookup_setting(default, settings.model_prompt_lookup)
    gen.max_time_s = settings.model_timeout_s or LOCAL_MAX_TIME_S
    return gen


def lower_priority(nice: int) -> None:
    """Lower this process's CPU priority by `nice` (settings.model_nice), once per process, so that the model
    takes only the CPU time other roles leave (bench/slack: the bot's acks). On Linux a nice value belongs to
    each thread and a new thread takes its creator's, so every thread running now is lowered: torch's OpenMP
    workers and the executor's threads made later inherit it."""
    if nice <= 0 or _LOWERED or not hasattr(os, "setpriority"):
        return
    _LOWERED.append(nice)
    tasks = Path("/proc/self/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:  # 0: the process (not Linux)
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except OSError:  # a thread that ended meanwhile
            continue


def _lookup_default(gen: HFGenerator) -> int:
    """3 where checking 4 tokens at once costs little more than decoding one (timed at load), else 0. In int4 with
    AVX512 kernels 3-token prompt lookup made drafts 1.1x faster; with torch's AVX2 kernels, where checking 4
    tokens cost 1.8x one, it ran at 0.88x."""
    if not any(hasattr(m, "int4_weight") for m in gen.model.modules()):
        return 0
    return 3 if rows_cost_ratio(gen.model, 4) < LOOKUP_MAX_COST else 0
