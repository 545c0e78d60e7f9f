"""BERT-whitening: a linear map to zero mean and identity covariance (DESIGN.md §2).

Su, Cao, Liu, Ou. "Whitening Sentence Representations for Better Semantics and Faster
Retrieval", arXiv 2103.15316 (2021); the (beta, gamma) generalisation is from the same author's
follow-up ("BERT-whitening with two knobs", kexue.fm 2022).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file, save

from app import __version__
from app.core.errors import (
    DimensionMismatchError,
    EmptyInputError,
    InputValidationError,
    NotFittedError,
)
from app.core.files import write_durably
from app.core.types import Embeddings, Float64Array
from app.transforms.base import TENSORS_FILE, read_checked_metadata, write_metadata


class Whitening:
    """BERT-whitening with k components and the knobs beta, gamma.

    Fitting computes the mean mu (d,) and covariance Sigma = (X - mu)^T (X - mu) / N (d, d) of N
    sentence vectors, and Sigma's eigendecomposition U diag(S) U^T (S descending). It then maps

        y = (x + bias) @ kernel,  bias = -beta * mu,  kernel = U[:, :k] @ diag(S[:k] ** (-gamma/2))

    beta = gamma = 1 is standard whitening: the fitted corpus gets zero mean and identity
    covariance, so cosine behaves as the metric assumes. beta = gamma = 0 is a pure rotation
    (the PCA projection when k < d). k < d keeps the largest-variance directions, which shrinks
    an index by d/k and often helps STS; on encoders already trained for cosine (such as
    all-MiniLM-L6-v2) full whitening can hurt, hence the knobs.

    Args:
        n_components: k, output dimension, 1 <= k <= d; ``None`` keeps all d.
        beta: Share of the mean removed, in [0, 1].
        gamma: Strength of the variance equalisation, in [0, 1].
        eps: Floor on the eigenvalues S (an absolute variance), so 1/sqrt(S) stays finite when
            Sigma is singular (N <= d, or collinear dimensions).
        model: Name of the encoder model whose vectors are fitted (recorded, checked on load).
        pooling: Pooling mode of those vectors (recorded, checked on load).

    Raises:
        InputValidationError: k < 1, or beta/gamma outside [0, 1].

    Example:
        >>> w = Whitening(n_components=128).fit(vectors)   # vectors: float32 (N, 384)
        >>> w.transform(vectors).shape
        (N, 128)
    """

    kind = "whitening"

    def __init__(
        self,
        n_components: int | None = None,
        *,
        beta: float = 1.0,
        gamma: float = 1.0,
        eps: float = 1e-12,
        model: str | None = None,
        pooling: str | None = None,
    ) -> None:
        if n_components is not None and n_components < 1:
            raise InputValidationError(f"n_components must be >= 1, got {n_components}")
        for name, value in (("beta", beta), ("gamma", gamma)):
            if not 0.0 <= value <= 1.0:
                raise InputValidationError(f"{name} must be in [0, 1], got {value}")
        self.requested_components = n_components
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.eps = float(eps)
        self.model = model
        self.pooling = pooling
        self.n_fitted = 0
        self.created: str | None = None
        self.mean: Float64Array | None = None  # (d,) mu
        self.components: Float64Array | None = None  # (d, d) U, columns by descending variance
        self.eigenvalues: Float64Array | None = None  # (d,) S, descending
        self.kernel: Embeddings | None = None  # float32 (d, k)
        self.bias: Embeddings | None = None  # float32 (d,)

    @property
    def dimension(self) -> int:
        """d, the input dimension. Raises ``NotFittedError`` before ``fit``/``load``."""
        return int(self._fitted_kernel().shape[0])

    @property
    def n_components(self) -> int:
        """k, the output dimension. Raises ``NotFittedError`` before ``fit``/``load``."""
        return int(self._fitted_kernel().shape[1])

    def fit(self, embeddings: Embeddings | Iterable[Embeddings]) -> Self:
        """Fit mu and Sigma on sentence vectors, in one array or streamed in batches.

        Streaming keeps only float64 running sums of x and x x^T (d + d*d numbers), so the
        corpus may be larger than memory. The sums are taken around the first batch's mean
        (the shifted-data algorithm), which avoids the cancellation of E[x x^T] - mu mu^T.

        Args:
            embeddings: float array (N, d), or an iterable of float arrays (n_i, d).

        Returns:
            ``self``, fitted.

        Raises:
            EmptyInputError: No vectors.
            DimensionMismatchError: A batch is not 2-D, batches disagree on d, or k > d.
            InputValidationError: A vector holds NaN or inf.
        """
        batches = [embeddings] if isinstance(embeddings, np.ndarray) else embeddings
        shift: Float64Array | None = None
        total = 0
        sum_x: Float64Array | None = None
        sum_xx: Float64Array | None = None
        for batch in batches:
            x = np.asarray(batch, dtype=np.float64)
            if x.ndim != 2:
                raise DimensionMismatchError(f"expected vectors of shape (n, d), got {x.shape}")
            if len(x) == 0:
                continue
            if not np.isfinite(x).all():
                raise InputValidationError("vectors contain NaN or inf; cannot fit whitening")
            if shift is None:
                shift = x.mean(axis=0)
                sum_x = np.zeros_like(shift)
                sum_xx = np.zeros((len(shift), len(shift)))
            elif x.shape[1] != len(shift):
                raise DimensionMismatchError(
                    f"batch has d={x.shape[1]}, earlier batches had d={len(shift)}"
                )
            assert sum_x is not None and sum_xx is not None
            centred = x - shift
            sum_x += centred.sum(axis=0)
            sum_xx += centred.T @ centred
            total += len(x)
        if shift is None or sum_x is None or sum_xx is None:
            raise EmptyInputError("no vectors to fit whitening on")
        d = len(shift)
        k = self.requested_components or d
        if k > d:
            raise DimensionMismatchError(f"n_components={k} exceeds the vectors' dimension d={d}")
        offset = sum_x / total
        sigma = sum_xx / total - np.outer(offset, offset)
        # Sigma is symmetric PSD: eigh is the exact, cheaper form of the paper's svd(Sigma).
        eigenvalues, eigenvectors = np.linalg.eigh((sigma + sigma.T) / 2)
        order = np.argsort(eigenvalues)[::-1]
        self.mean = shift + offset
        self.eigenvalues = np.maximum(eigenvalues[order], 0.0)
        self.components = eigenvectors[:, order]
        self.n_fitted = total
        self.created = datetime.now(UTC).isoformat(timespec="seconds")
        self.kernel, self.bias = self._kernel_and_bias(k)
        return self

    def _kernel_and_bias(self, k: int) -> tuple[Embeddings, Embeddings]:
        assert self.components is not None and self.eigenvalues is not None
        assert self.mean is not None
        scale = np.maximum(self.eigenvalues[:k], self.eps) ** (-self.gamma / 2)
        kernel = (self.components[:, :k] * scale).astype(np.float32)
        bias = (-self.beta * self.mean).astype(np.float32)
        return kernel, bias

    def transform(self, embeddings: Embeddings) -> Embeddings:
        """Apply ``y = (x + bias) @ kernel``.

        Args:
            embeddings: float array (n, d) from the encoder the transform was fitted for.

        Returns:
            float32 array (n, k). Not normalised: take cosine, or ``l2_normalize`` first.

        Raises:
            NotFittedError: Called before ``fit`` or ``load``.
            DimensionMismatchError: The vectors are not (n, d).
        """
        kernel = self._fitted_kernel()
        assert self.bias is not None
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != kernel.shape[0]:
            raise DimensionMismatchError(
                f"whitening expects vectors of shape (n, {kernel.shape[0]}), got {x.shape}"
            )
        return np.asarray((x + self.bias) @ kernel, dtype=np.float32)

    def _fitted_kernel(self) -> Embeddings:
        if self.kernel is None:
            raise NotFittedError("whitening is not fitted; call fit() or Whitening.load()")
        return self.kernel

    @property
    def metadata(self) -> dict[str, Any]:
        """The JSON metadata written beside the tensors."""
        return {
            "type": self.kind,
            "model": self.model,
            "pooling": self.pooling,
            "dimension": self.dimension,
            "n_components": self.n_components,
            "beta": self.beta,
            "gamma": self.gamma,
            "eps": self.eps,
            "n_fitted": self.n_fitted,
            "created": self.created,
            "sentsim_version": __version__,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``transform.safetensors`` (kernel, bias, mean, components, eigenvalues) and
        ``transform.json`` (metadata) into folder ``path``, created if needed.

        Returns:
            The folder.

        Raises:
            NotFittedError: Called before ``fit``.
        """
        folder = Path(path)
        metadata = self.metadata
        arrays = self.tensors()
        folder.mkdir(parents=True, exist_ok=True)
        write_durably(folder / TENSORS_FILE, save(arrays))
        write_metadata(folder, metadata)
        return folder

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        model: str | None = None,
        pooling: str | None = None,
        dimension: int | None = None,
    ) -> Whitening:
        """Read a transform written by ``save`` and check it fits the encoder in use.

        Args:
            path: The folder.
            model: The encoder's model name; refused if the transform records another.
            pooling: The encoder's pooling; refused if the transform records another.
            dimension: The encoder's d; refused if the transform's d differs.

        Returns:
            The fitted transform, equal to the one saved.

        Raises:
            ArtifactNotFoundError: The folder or one of its files is missing.
            InputValidationError: The folder holds another kind of transform.
            TransformMismatchError: ``model``, ``pooling`` or ``dimension`` differs from the
                recorded one (the message says which, and both values).
        """
        folder, meta = read_checked_metadata(
            path, cls.kind, model=model, pooling=pooling, dimension=dimension
        )
        return cls.from_tensors(meta, load_file(str(folder / TENSORS_FILE)))

    def tensors(self) -> dict[str, npt.NDArray[Any]]:
        """The fitted arrays, as ``save`` writes them: ``kernel`` float32 (d, k), ``bias``
        float32 (d,), ``mean`` float64 (d,), ``components`` float64 (d, d), ``eigenvalues``
        float64 (d,) (C-contiguous).

        Raises:
            NotFittedError: Called before ``fit``.
        """
        self._fitted_kernel()
        assert self.mean is not None and self.components is not None
        assert self.eigenvalues is not None and self.kernel is not None and self.bias is not None
        tensors = {
            "kernel": self.kernel,
            "bias": self.bias,
            "mean": self.mean,
            "components": self.components,
            "eigenvalues": self.eigenvalues,
        }
        return {k: np.ascontiguousarray(v) for k, v in tensors.items()}

    @classmethod
    def from_tensors(cls, metadata: dict[str, Any], tensors: dict[str, Any]) -> Whitening:
        """The transform whose ``metadata`` and ``tensors()`` these are (as saved; nothing is
        checked against an encoder here: ``load`` does that for files)."""
        obj = cls(
            metadata["n_components"],
            beta=metadata["beta"],
            gamma=metadata["gamma"],
            eps=metadata["eps"],
            model=metadata["model"],
            pooling=metadata["pooling"],
        )
        obj.mean, obj.components = tensors["mean"], tensors["components"]
        obj.eigenvalues = tensors["eigenvalues"]
        obj.kernel, obj.bias = tensors["kernel"], tensors["bias"]
        obj.n_fitted, obj.created = metadata["n_fitted"], metadata["created"]
        return obj
