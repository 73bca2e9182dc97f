"""CPU kernels (summarizer/cpukernels.py): blocked products equal torch's, and int4 layers keep a 4-bit model's
weights exactly; on a real model too."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from summarizer.cpukernels import (
    blocked_linear,
    decode_weight_bytes,
    int4_grid,
    use_blocked_linear,
    use_int4_weights,
)


@pytest.mark.parametrize("shape", [(96,), (1, 96), (1, 1, 96), (3, 96), (2, 5, 96), (1, 130, 96)])
def test_blocked_linear_equals_torch_linear(shape):
    gen = torch.Generator().manual_seed(len(shape))
    w = torch.randn(256, 96, generator=gen)
    x = torch.randn(*shape, generator=gen)
    got, want = blocked_linear(x, w), torch.nn.functional.linear(x, w)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_only_float_layers_with_divisible_rows_are_routed():
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Linear(64, 12), torch.nn.Linear(12, 64).bfloat16())
    x = torch.randn(4, 16)
    before = model[1](model[0](x))
    assert use_blocked_linear(model, tune=False) == 2  # 12 rows do not split in 8 blocks
    assert "forward" in vars(model[0]) and "forward" not in vars(model[1]) and "forward" in vars(model[2])
    torch.testing.assert_close(model[1](model[0](x)), before, rtol=1e-5, atol=1e-5)  # bias kept
    xb = torch.randn(3, 12).bfloat16()
    want = torch.nn.functional.linear(xb, model[2].weight, model[2].bias)
    torch.testing.assert_close(model[2](xb), want, rtol=1e-2, atol=1e-2)  # bf16: the sums run in another order
    assert use_blocked_linear(model, tune=False) == 0  # routed layers are not wrapped twice


def _four_bit(rows: int, cols: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight dequantized from a 4-bit format, as GGUF's Q4_1 stores it: per 32 weights, levels 0..15 times a
    step plus a low value. Some groups use only part of the 16 levels; one is constant."""
    gen = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 16, (rows, cols), generator=gen)
    levels[0, :32] = torch.randint(3, 9, (32,), generator=gen)  # 6 levels only
    levels[1, :32] = 5  # constant
    step = torch.rand(rows, cols // 32, generator=gen) * 0.01 + 1e-3
    low = torch.randn(rows, cols // 32, generator=gen) * 0.05
    return (levels.reshape(rows, -1, 32) * step[..., None] + low[..., None]).reshape(rows, cols), levels


def test_int4_grid_recovers_four_bit_weights_exactly():
    w, _ = _four_bit(96, 128)
    levels, step, low = int4_grid(w)
    assert levels.dtype == torch.int32 and int(levels.min()) >= 0 and int(levels.max()) <= 15
    rebuilt = (levels.reshape(96, -1, 32) * step[..., None] + low[..., None]).reshape(96, 128)
    torch.testing.assert_close(rebuilt, w, rtol=0, atol=1e-6)


def test_int4_grid_refuses_weights_that_are_not_four_bit():
    gen = torch.Generator().manual_seed(1)
    assert int4_grid(torch.randn(96, 128, generator=gen)) is None
    six_bit = torch.randint(0, 64, (96, 128), generator=gen) * 0.01  # GGUF's Q6_K has 64 levels
    assert int4_grid(six_bit) is None
    w, _ = _four_bit(96, 128)
    w[50, 7] += 1e-3  # one weight off the grid, in a row the cheap first look skips
    assert int4_grid(w) is None
    assert int4_grid(torch.randn(8, 40, generator=gen)) is None  # 40 columns are not whole groups


def test_int4_layers_compute_what_the_float_layers_did():
    w, _ = _four_bit(64, 96)
    model = torch.nn.Sequential(torch.nn.Linear(96, 64), torch.nn.Linear(64, 32))
    with torch.no_grad():
        model[0].weight.copy_(w)
    xs = [torch.randn(n, 96, generator=torch.Generator().manual_seed(n)) for n in (1, 4, 9)]
    bias = model[0].bias.detach().clone()
    want = [torch.nn.functional.linear(x, w, bias) for x in xs]
    float_bytes = decode_weight_bytes(model)
    assert use_int4_weights(model, torch.float32) == 1  # the random second layer stays float32
    assert hasattr(model[0], "int4_weight") and not hasattr(model[1], "int4_weight")
    assert decode_weight_bytes(model) == float_bytes - 64 * 96 * 4 + 64 * 96 // 2 + 3 * 64 * 2 * 2
    with torch.inference_mode():
        got = [model[0](x) for x in xs]
    for g, wnt in zip(got[:2], want[:2], strict=True):  # 1 and 4 rows: the int4 kernel, bf16 activations
        err = (g - wnt).abs().max() / wnt.abs().max()
        assert err < 1e-2, err
    torch.testing.assert_close(got[2], want[2])  # 9 rows (a prompt): the float copy, exactly


def test_int4_needs_whole_blocks_of_16_output_rows():
    w, _ = _four_bit(24, 96)
    layer = torch.nn.Linear(96, 24)
    with torch.no_grad():
        layer.weight.copy_(w)
    assert use_int4_weights(layer, torch.float32) == 0 and not hasattr(layer, "int4_weight")


@pytest.mark.slow
def test_real_model_logits_unchanged_by_blocked_layers():
    """SmolLM2 in float32: the routed model's next-token logits match torch's own products."""
    from summarizer.llm.provisioning import load_model as _load
    from tests.conftest import require_smollm2

    require_smollm2()
    gen = _load("smollm2", Path(tempfile.gettempdir()) / "opsdraft-test-models", torch.float32, None)
    ids = gen.tokenizer("The checkout service returned 502 after deploy v2.3.1", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        want = gen.model(ids).logits
        routed = use_blocked_linear(gen.model, tune=False)
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


@pytest.mark.slow
def test_real_four_bit_model_keeps_its_weights_in_int4():
    """SmolLM2 ships as GGUF Q4_1: int4 keeps nearly every layer 4-bit, scores the next token as float32 does
    and writes."""
    from summarizer.llm import load_generator
    from tests.conftest import require_smollm2

    require_smollm2()
    cache = Path(tempfile.gettempdir()) / "opsdraft-test-models"
    gen, ref = load_generator("smollm2", cache, dtype="int4"), load_generator("smollm2", cache, dtype="float32")
    assert "int4" in gen.name
    four_bit = [m for m in gen.model.modules() if hasattr(m, "int4_weight")]
    assert len(four_bit) >= 7 * 30 - 30  # GGUF writers keep a few layers at more bits
    assert decode_weight_bytes(gen.model) < decode_weight_bytes(ref.model) / 2.5
    ids = gen.tokenizer("The disk on db-01 is full because", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a, b = gen.model(ids).logits[0, -1].float(), ref.model(ids).logits[0, -1]
        step = gen.model(ids[:, :1]).logits[0, -1].float()  # one row: the int4 kernel
        step_ref = ref.model(ids[:, :1]).logits[0, -1]
    for x, y in ((a, b), (step, step_ref)):
        assert torch.nn.functional.cosine_similarity(x, y, dim=0) > 0.99 and x.argmax() == y.argmax()
    assert gen.generate([{"role": "user", "content": "Say hello."}], max_new_tokens=8).strip()


@pytest.mark.slow
def test_prompt_lookup_is_on_by_default_where_checking_tokens_is_cheap(monkeypatch):
    """int4 turns prompt lookup on (3 tokens) only where 4 rows cost under LOOKUP_MAX_COST times one row, as
    timed at load; without 4-bit layers it stays off."""
    import summarizer.llm.loader as llm
    from tests.conftest import require_smollm2

    require_smollm2()
    cache = Path(tempfile.gettempdir()) / "opsdraft-test-models"
    gen, ref = llm.load_generator("smollm2", cache, dtype="int4"), llm.load_generator("smollm2", cache, dtype="float32")
    assert 1 / 4 < llm.rows_cost_ratio(gen.model, 4) < 16  # a real timing, not a constant
    for ratio, want in ((1.1, 3), (1.8, 0)):
        monkeypatch.setattr(llm, "rows_cost_ratio", lambda model, rows, r=ratio: r)
        assert llm._lookup_default(gen) == want
    assert llm._lookup_default(ref) == 0
