"""BERT-flow: Gaussianisation on synthetic data, invertibility, log-det, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.errors import (
    DimensionMismatchError,
    EmptyInputError,
    NotFittedError,
    TransformMismatchError,
)
from app.transforms.flow import FlowTransform
from app.transforms.glow import Glow
from app.transforms.loading import load_transform

D = 16


def _gaussian(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(D, D)) * np.logspace(0, -1.5, D)
    return (rng.normal(size=(n, D)) @ mixing.T + 2.0).astype(np.float32)


def _mixture(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, D)) * 3
    mixing = rng.normal(size=(D, D)) * np.logspace(0, -1.5, D) * 0.5
    return (centers[rng.integers(0, 4, n)] + rng.normal(size=(n, D)) @ mixing.T).astype(np.float32)


def _gaussian_nll(train: np.ndarray, test: np.ndarray) -> float:
    """Held-out NLL (nats/vector) of the maximum-likelihood Gaussian: the baseline."""
    mu, cov = train.mean(0), np.cov(train.T, bias=True)
    diff = test - mu
    maha = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
    return float(
        np.mean(0.5 * maha + 0.5 * np.linalg.slogdet(cov)[1] + 0.5 * D * np.log(2 * np.pi))
    )


@pytest.fixture(scope="module")
def mixture_flow() -> tuple[FlowTransform, np.ndarray]:
    data = _mixture(3500)
    return FlowTransform(seed=0, hidden=64, epochs=80).fit(data[:3000]), data


@pytest.mark.parametrize("make", [_gaussian, _mixture])
def test_latents_are_close_to_standard_normal(make) -> None:  # type: ignore[no-untyped-def]
    data = make(3000)
    z = FlowTransform(seed=0, hidden=64, epochs=80).fit(data).transform(data).astype(np.float64)
    cov = np.cov(z.T, bias=True)
    # Stated tolerance: mean |cov - I| < 0.08, every variance in [0.5, 1.5], means within 0.3.
    assert np.abs(cov - np.eye(D)).mean() < 0.08
    assert 0.5 < cov.diagonal().min() and cov.diagonal().max() < 1.5
    assert np.abs(z.mean(0)).max() < 0.3


def test_flow_beats_the_gaussian_baseline_on_a_mixture(mixture_flow) -> None:  # type: ignore[no-untyped-def]
    flow, data = mixture_flow
    train, test = data[:3000], data[3000:]
    assert -flow.log_prob(test).mean() < _gaussian_nll(train, test) - 1.0


def test_inverse_round_trip(mixture_flow) -> None:  # type: ignore[no-untyped-def]
    flow, data = mixture_flow
    np.testing.assert_allclose(flow.inverse(flow.transform(data)), data, atol=1e-4)


def test_log_det_equals_the_jacobian_reference() -> None:
    torch.manual_seed(0)
    glow = Glow(6, steps=3, hidden=16, seed=0).double()
    x = torch.randn(64, 6, dtype=torch.float64)
    glow(x)  # data-initialise the actnorms
    for layer in glow.modules():  # move off the identity initialisation
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.3)
    for row in x[:5]:
        _, log_det = glow(row[None])
        jacobian = torch.func.jacrev(lambda v: glow(v[None])[0][0])(row)
        expected = torch.linalg.slogdet(jacobian).logabsdet
        torch.testing.assert_close(log_det[0], expected, atol=1e-8, rtol=1e-8)


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    data = _gaussian(500)
    flow = FlowTransform(seed=1, hidden=32, epochs=5, model="m", pooling="mean").fit(data)
    folder = flow.save(tmp_path / "flow")
    loaded = FlowTransform.load(folder, model="m", pooling="mean", dimension=D)
    assert np.array_equal(loaded.transform(data), flow.transform(data))
    assert np.array_equal(loaded.log_prob(data), flow.log_prob(data))
    assert loaded.metadata["steps"] == 4 and loaded.metadata["n_fitted"] == 500
    assert isinstance(load_transform(folder), FlowTransform)  # dispatch on the saved type
    with pytest.raises(TransformMismatchError, match="pooling 'mean'"):
        FlowTransform.load(folder, pooling="cls")
    assert not list(folder.glob("*.pt")) and not list(folder.glob("*.pkl"))


def test_same_seed_same_flow() -> None:
    data = _gaussian(400)
    a = FlowTransform(seed=3, hidden=32, epochs=3).fit(data).transform(data)
    b = FlowTransform(seed=3, hidden=32, epochs=3).fit(data).transform(data)
    assert np.array_equal(a, b)


def test_misuse() -> None:
    with pytest.raises(NotFittedError):
        FlowTransform().transform(np.zeros((2, D), np.float32))
    with pytest.raises(EmptyInputError):
        FlowTransform().fit(np.zeros((5, D), np.float32))
    flow = FlowTransform(hidden=16, epochs=1).fit(_gaussian(100))
    with pytest.raises(DimensionMismatchError):
        flow.transform(np.zeros((2, D + 1), np.float32))
