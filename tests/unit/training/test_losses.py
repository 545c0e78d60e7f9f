"""AM-Softmax and CoSENT against independent numpy computations, written from the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.training.losses import am_softmax_loss, cosent_loss


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _log_softmax_ce(logits: np.ndarray) -> float:
    """Mean cross-entropy of each row towards its diagonal entry."""
    total = 0.0
    for i, row in enumerate(logits):
        top = row.max()
        total += -(row[i] - top - np.log(np.exp(row - top).sum()))
    return total / len(logits)


@pytest.mark.parametrize(("margin", "scale"), [(0.35, 30.0), (0.0, 20.0), (0.2, 5.0)])
def test_am_softmax_equals_numpy(margin: float, scale: float) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    cos = _unit(a) @ _unit(b).T
    logits = scale * (cos - margin * np.eye(7))
    expected = (_log_softmax_ce(logits) + _log_softmax_ce(logits.T)) / 2
    got = am_softmax_loss(torch.tensor(a), torch.tensor(b), margin, scale)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_am_softmax_margin_makes_the_loss_larger_and_prefers_partners() -> None:
    rng = np.random.default_rng(1)
    a = torch.tensor(rng.normal(size=(6, 8)), dtype=torch.float32)
    matched = a + 0.1 * torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    shuffled = matched[torch.tensor([1, 2, 3, 4, 5, 0])]
    assert am_softmax_loss(a, matched, 0.35) > am_softmax_loss(a, matched, 0.0)
    assert am_softmax_loss(a, matched) < am_softmax_loss(a, shuffled)


@pytest.mark.parametrize("scale", [20.0, 1.0])
def test_cosent_equals_numpy(scale: float) -> None:
    rng = np.random.default_rng(2)
    first, second = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    labels = np.array([0.0, 5.0, 2.5, 2.5, 1.0, 4.2, 3.0, 0.0, 5.0])
    cos = np.sum(_unit(first) * _unit(second), axis=1)
    total = 0.0
    for i in range(9):
        for j in range(9):
            if labels[i] > labels[j]:
                total += np.exp(scale * (cos[j] - cos[i]))
    expected = np.log(1 + total)
    got = cosent_loss(torch.tensor(first), torch.tensor(second), torch.tensor(labels), scale)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_cosent_is_zero_when_no_pair_outranks_another() -> None:
    x = torch.randn(4, 3)
    assert float(cosent_loss(x, x, torch.ones(4))) == 0.0


@pytest.mark.parametrize(("margin", "scale"), [(0.35, 30.0), (0.0, 20.0)])
def test_am_softmax_over_the_whole_batch_equals_numpy(margin: float, scale: float) -> None:
    rng = np.random.default_rng(3)
    n = 5
    a, b = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    x = _unit(np.concatenate([a, b]))
    total = 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        others = [j for j in range(2 * n) if j != i]
        logits = {j: scale * (x[i] @ x[j] - (margin if j == partner else 0.0)) for j in others}
        top = max(logits.values())
        log_z = top + np.log(sum(np.exp(v - top) for v in logits.values()))
        total += log_z - logits[partner]
    expected = total / (2 * n)
    got = am_softmax_loss(torch.tensor(a), torch.tensor(b), margin, scale, negatives="batch")
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_am_softmax_rejects_unknown_negatives() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="partners or batch"):
        am_softmax_loss(x, x, negatives="all")
