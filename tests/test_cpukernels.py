"""Blocked float32 linear layers (summarizer/cpukernels.py): same products as torch's, on a real model too."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from summarizer.cpukernels import blocked_linear, use_blocked_linear


@pytest.mark.parametrize("shape", [(96,), (1, 96), (1, 1, 96), (3, 96), (2, 5, 96), (1, 130, 96)])
def test_blocked_linear_equals_torch_linear(shape):
    gen = torch.Generator().manual_seed(len(shape))
    w = torch.randn(256, 96, generator=gen)
    x = torch.randn(*shape, generator=gen)
    got, want = blocked_linear(x, w), torch.nn.functional.linear(x, w)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_only_float32_layers_with_divisible_rows_are_routed():
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Linear(64, 12), torch.nn.Linear(12, 64).bfloat16())
    x = torch.randn(4, 16)
    before = model[1](model[0](x))
    assert use_blocked_linear(model) == 1  # 12 rows do not split in 8 blocks; bf16 is left to torch
    assert "forward" in vars(model[0]) and "forward" not in vars(model[1]) and "forward" not in vars(model[2])
    torch.testing.assert_close(model[1](model[0](x)), before, rtol=1e-5, atol=1e-5)  # bias kept


@pytest.mark.slow
def test_real_model_logits_unchanged_by_blocked_layers():
    """SmolLM2 in float32: the routed model's next-token logits match torch's own products."""
    from summarizer.llm import _load
    from tests.conftest import require_smollm2

    require_smollm2()
    gen = _load("smollm2", Path(tempfile.gettempdir()) / "opsdraft-test-models", torch.float32, None)
    ids = gen.tokenizer("The checkout service returned 502 after deploy v2.3.1", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        want = gen.model(ids).logits
        routed = use_blocked_linear(gen.model)
        got = gen.model(ids).logits
        step = gen.model(ids[:, :1]).logits  # one row: the decoding case
    assert routed == len([m for m in gen.model.modules() if isinstance(m, torch.nn.Linear)]) >= 7 * 30 + 1
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(step[0, 0], want[0, 0], rtol=1e-3, atol=1e-3)
    assert got[0, -1].argmax() == want[0, -1].argmax()


def test_bf16_only_where_the_cpu_computes_it(tmp_path):
    from summarizer.cpukernels import cpu_has_native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse2 avx2 fma f16c\n")
    assert not cpu_has_native_bf16(info)
    info.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_native_bf16(info)
    assert not cpu_has_native_bf16(tmp_path / "missing")
