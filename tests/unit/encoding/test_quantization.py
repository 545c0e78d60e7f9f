"""Which layers quantize_int8 puts in int8, bf16 or leaves alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
from transformers import AutoModel

from app.encoding.quantization import Bf16Linear, quantize_int8


def _types(model: nn.Module) -> dict[str, type]:
    return {name: type(m) for name, m in model.named_modules()}


def test_bert_attention_int8_and_ffn_bf16(tiny_bert_dir: Path) -> None:
    types = _types(quantize_int8(AutoModel.from_pretrained(tiny_bert_dir).eval(), ffn="bf16"))
    for i in range(2):
        prefix = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            assert types[prefix + name] is DynamicInt8Linear
        assert types[prefix + "attention.output.dense"] is DynamicInt8Linear
        assert types[prefix + "intermediate.dense"] is Bf16Linear
        assert types[prefix + "output.dense"] is Bf16Linear
    assert types["pooler.dense"] is nn.Linear  # unused by the poolings: left as it is


def test_ffn_int8_quantizes_every_linear(tiny_bert_dir: Path) -> None:
    model = quantize_int8(AutoModel.from_pretrained(tiny_bert_dir).eval(), ffn="int8")
    assert not [n for n, m in model.named_modules() if type(m) is nn.Linear]


def test_other_layouts_get_plain_dynamic_quantization() -> None:
    model = quantize_int8(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)))
    assert type(model[0]) is DynamicInt8Linear and type(model[2]) is DynamicInt8Linear
    assert model(torch.ones(1, 8)).shape == (1, 2)


@pytest.mark.parametrize("shape", [(3, 8), (2, 5, 8)])
def test_bf16_linear_takes_and_returns_float32(shape: tuple[int, ...]) -> None:
    linear = nn.Linear(8, 4)
    x = torch.randn(*shape)
    expected = linear(x)
    out = Bf16Linear(linear)(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=5e-2, rtol=5e-2)
