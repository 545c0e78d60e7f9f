"""AM-Softmax and CoSENT against independent numpy computations, written from the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.training.losses import am_softmax_loss, cosent_loss, pair_groups


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


def _softmax_ce(logits: dict[int, float], target: int) -> float:
    top = max(logits.values())
    return top + np.log(sum(np.exp(v - top) for v in logits.values())) - logits[target]


#: Pair groups: pairs 1 and 3 share a sentence (one group), the others stand alone.
GROUPS = [0, 1, 2, 1, 4]


@pytest.mark.parametrize(("margin", "scale"), [(0.35, 30.0), (0.0, 20.0)])
@pytest.mark.parametrize("groups", [None, GROUPS])
def test_am_softmax_over_the_whole_batch_equals_numpy(
    margin: float, scale: float, groups: list[int] | None
) -> None:
    rng = np.random.default_rng(3)
    n = 5
    a, b = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    x = _unit(np.concatenate([a, b]))
    group = (groups or list(range(n))) * 2
    total = 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        # Candidates: every other sentence not of i's group, and i's partner.
        others = [j for j in range(2 * n) if j == partner or group[j] != group[i]]
        logits = {j: scale * (x[i] @ x[j] - (margin if j == partner else 0.0)) for j in others}
        total += _softmax_ce(logits, partner)
    expected = total / (2 * n)
    got = am_softmax_loss(
        torch.tensor(a),
        torch.tensor(b),
        margin,
        scale,
        negatives="batch",
        groups=None if groups is None else torch.tensor(groups),
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_am_softmax_leaves_a_pairs_group_mates_out_of_its_negatives() -> None:
    rng = np.random.default_rng(4)
    n, margin, scale = 5, 0.35, 30.0
    a, b = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    cos = _unit(a) @ _unit(b).T
    total = 0.0
    for i in range(n):
        for matrix in (cos, cos.T):  # a -> b, then b -> a
            others = [j for j in range(n) if j == i or GROUPS[j] != GROUPS[i]]
            logits = {j: scale * (matrix[i, j] - (margin if j == i else 0.0)) for j in others}
            total += _softmax_ce(logits, i)
    expected = total / (2 * n)
    got = am_softmax_loss(
        torch.tensor(a), torch.tensor(b), margin, scale, groups=torch.tensor(GROUPS)
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_pair_groups_join_pairs_that_share_a_sentence_transitively() -> None:
    first = ["how to cook rice", "how to cook pasta", "best way to cook rice", "what is love", "x"]
    second = [
        "rice cooking tips",
        "pasta recipe",
        "how to cook rice",
        "define love",
        "pasta recipe",
    ]
    groups = pair_groups(first, second).tolist()
    assert groups[0] == groups[2]  # "how to cook rice" on either side
    assert groups[1] == groups[4]  # "pasta recipe"
    assert len({groups[0], groups[1], groups[3]}) == 3


def test_am_softmax_rejects_unknown_negatives() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="partners or batch"):
        am_softmax_loss(x, x, negatives="all")
