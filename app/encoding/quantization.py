"""int8 inference for BERT-family encoders on the CPU (``precision="int8"``).

Dynamic quantization (``torch.ao.quantization.quantize_dynamic``) stores Linear weights in int8
and quantizes each layer's input on the fly with one scale per tensor. That single scale is the
weak point: the feed-forward (FFN) layers' inputs carry a few outlier channels (LayerNorm
outliers into the up-projection, GELU outliers into the down-projection), so one scale wastes
most of the int8 range on them. Measured on all-MiniLM-L6-v2, STS-B test, mean pooling
(Spearman x100, fp32 82.03):

=====================================================  ========  ==========
Linear layers in int8                                   Spearman  sentences/s
=====================================================  ========  ==========
all (torch.ao default)                                     81.16        1266
attention (Q, K, V, output) int8, FFN in bf16              82.02        1326
attention int8, FFN in fp32                                82.03         844
=====================================================  ========  ==========

(2 cores with AMX; fp32 735 sentences/s in the same run.) So the attention projections go to
int8 and the FFN runs in bf16 where the CPU has native bf16 matrix units (AVX512-BF16 / AMX):
lossless and faster than either alone. Without native bf16, bf16 would be slower than fp32, so
every Linear layer is quantized (the torch.ao default, with its quality cost).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal, cast

import torch
from torch import nn


class Bf16Linear(nn.Module):
    """A Linear computed in bf16 that takes and returns float32 tensors."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear.to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x.to(torch.bfloat16))
        return out.float()


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _quantize_dynamic(model: nn.Module, spec: set[type[nn.Module]] | dict[str, Any]) -> nn.Module:
    # torch.ao.quantization is untyped: state the signature it has.
    quantize = cast(Callable[..., nn.Module], torch.ao.quantization.quantize_dynamic)
    with warnings.catch_warnings():
        # torch 2.13 announces the move of eager quantization to torchao on every call; the API
        # still works, and the README records the choice.
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=Warning)
        return quantize(model, spec, dtype=torch.qint8)


def quantize_int8(model: nn.Module, *, ffn: Literal["bf16", "int8"] | None = None) -> nn.Module:
    """Quantize an encoder for int8 CPU inference, in place.

    Args:
        model: A float32 Hugging Face encoder on the CPU, in eval mode.
        ffn: How BERT's feed-forward Linear layers run: ``bf16`` or ``int8``; ``None`` picks
            ``bf16`` when the CPU has native bf16, else ``int8``. Models without BERT's module
            layout (``encoder.layer[i].intermediate.dense`` ...) get every Linear in int8.

    Returns:
        The quantized model. Activations are quantized per batch tensor at run time, so int8
        vectors depend slightly on which sentences share a batch.
    """
    ffn_layers = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and ".encoder.layer." in f".{name}"
        and (name.endswith(".intermediate.dense") or name.endswith(".output.dense"))
        and ".attention." not in f".{name}."
    ]
    if not ffn_layers or (ffn or ("bf16" if cpu_has_fast_bf16() else "int8")) == "int8":
        return _quantize_dynamic(model, {nn.Linear})
    for name, linear in ffn_layers:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, Bf16Linear(linear))
    attention = {
        name: torch.ao.quantization.default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and ".attention." in f".{name}."
    }
    return _quantize_dynamic(model, attention)
