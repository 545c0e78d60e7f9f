"""Pooling against hand-computed masked means."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core.errors import InputValidationError
from app.encoding.pooling import POOLING_MODES, masked_mean, pool


@pytest.fixture
def batch() -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    hidden_states = tuple(torch.randn(3, 5, 4) for _ in range(4))  # embeddings + 3 layers
    return mask, hidden_states


def _hand_mean(h: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # Loop over rows and real tokens only: an independent spelling of the masked mean.
    return np.stack([h[i, : int(mask[i].sum())].mean(axis=0) for i in range(len(h))])


def test_masked_mean_ignores_padding(batch) -> None:
    mask, hs = batch
    expected = _hand_mean(hs[-1].numpy(), mask.numpy())
    np.testing.assert_allclose(masked_mean(hs[-1], mask).numpy(), expected, atol=1e-6)


def test_masked_mean_of_all_padding_row_is_zero() -> None:
    out = masked_mean(torch.ones(1, 3, 2), torch.zeros(1, 3, dtype=torch.long))
    assert torch.equal(out, torch.zeros(1, 2))


@pytest.mark.parametrize("pooling", POOLING_MODES)
def test_pool_matches_definition(batch, pooling: str) -> None:
    mask, hs = batch
    m, h = mask.numpy(), [x.numpy() for x in hs]
    expected = {
        "cls": h[-1][:, 0],
        "mean": _hand_mean(h[-1], m),
        "first_last_avg": _hand_mean((h[1] + h[-1]) / 2, m),
        "last2avg": _hand_mean((h[-2] + h[-1]) / 2, m),
    }[pooling]
    out = pool(pooling, mask, hs[-1], hs)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_unknown_pooling_lists_the_options(batch) -> None:
    mask, hs = batch
    with pytest.raises(InputValidationError, match="first_last_avg"):
        pool("max", mask, hs[-1], hs)


def test_layer_poolings_need_hidden_states(batch) -> None:
    mask, hs = batch
    with pytest.raises(InputValidationError, match="hidden states"):
        pool("first_last_avg", mask, hs[-1], None)
