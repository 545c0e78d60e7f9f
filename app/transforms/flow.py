"""BERT-flow: a normalizing flow that maps sentence vectors to an isotropic Gaussian.

Li, Zhou, He, Wang, Yang, Li, "On the Sentence Embeddings from Pre-trained Language Models"
(EMNLP 2020). The encoder stays frozen; an invertible network f is trained by maximum
likelihood on a corpus's sentence vectors,

    log p(x) = log N(f(x); 0, I) + log |det df/dx|,

and sentences are compared by the cosine of z = f(x) (DESIGN.md §3). Whitening is the
closed-form linear special case.

The network is Glow over vectors (``app.transforms.glow``); this module fits it, applies it
and saves it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn
from tqdm.auto import tqdm

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
from app.transforms.glow import Glow


@dataclass(frozen=True)
class FitReport:
    """How a flow fit went: epochs run, best held-out NLL (bits/dim), seconds."""

    epochs: int
    train_bits_per_dim: float
    validation_bits_per_dim: float
    seconds: float


class FlowTransform:
    """BERT-flow as a transform with whitening's interface (``fit``, ``transform``, ``save``,
    ``load``), plus ``inverse`` and ``log_prob``.

    Args:
        steps: K, the number of Glow steps.
        hidden: Width of each coupling's MLP.
        epochs: Most passes over the training split (early stopping usually ends sooner).
        batch_size: Vectors per Adam step.
        lr: Adam's learning rate.
        patience: Epochs without a better held-out NLL before stopping.
        validation_fraction: Share of the vectors held out for early stopping (10%).
        seed: Seeds the initialisation, the split and the shuffling: same data, same flow.
        device: ``cpu``, ``cuda``...; ``None`` uses a GPU when present.
        model: The encoder model's name (recorded, checked on load).
        pooling: The encoder's pooling (recorded, checked on load).
        show_progress_bar: A tqdm bar over epochs with the running NLL in bits/dim.

    Raises:
        InputValidationError: A knob out of range.
    """

    kind = "flow"

    def __init__(
        self,
        *,
        steps: int = 4,
        hidden: int = 256,
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        patience: int = 5,
        validation_fraction: float = 0.1,
        seed: int = 0,
        device: str | None = None,
        model: str | None = None,
        pooling: str | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        for name, value in (("steps", steps), ("hidden", hidden), ("epochs", epochs)):
            if value < 1:
                raise InputValidationError(f"{name} must be >= 1, got {value}")
        if not 0 < validation_fraction < 1:
            raise InputValidationError("validation_fraction must be in (0, 1)")
        self.steps, self.hidden, self.epochs = steps, hidden, epochs
        self.batch_size, self.lr, self.patience = batch_size, lr, patience
        self.validation_fraction, self.seed = validation_fraction, seed
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.pooling = model, pooling
        self.show_progress_bar = show_progress_bar
        self.flow: Glow | None = None
        self.d: int | None = None
        self.n_fitted = 0
        self.created: str | None = None
        self.report: FitReport | None = None

    @property
    def dimension(self) -> int:
        """d, the input (and output) dimension. Raises ``NotFittedError`` before fit/load."""
        self._flow()
        assert self.d is not None
        return self.d

    @property
    def n_components(self) -> int:
        """The output dimension: d (a flow keeps the dimension)."""
        return self.dimension

    def _flow(self) -> Glow:
        if self.flow is None:
            raise NotFittedError("the flow is not fitted; call fit() or FlowTransform.load()")
        return self.flow

    def fit(self, embeddings: Embeddings | Iterable[Embeddings]) -> Self:
        """Train by maximum likelihood (Adam), early-stopped on a held-out 10%.

        Args:
            embeddings: float (N, d) vectors, or an iterable of (n_i, d) batches (gathered:
                the flow trains on several passes over the data).

        Returns:
            ``self``, with the parameters of the best held-out epoch.

        Raises:
            EmptyInputError: Fewer than 20 vectors.
            DimensionMismatchError: Not (N, d) or batches of different d.
            InputValidationError: NaN or inf in the vectors.
        """
        parts = [embeddings] if isinstance(embeddings, np.ndarray) else list(embeddings)
        arrays = [np.asarray(p, dtype=np.float32) for p in parts]
        if any(a.ndim != 2 for a in arrays) or len({a.shape[1] for a in arrays}) > 1:
            raise DimensionMismatchError("expected vectors of shape (n, d), all of the same d")
        x = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
        if len(x) < 20:
            raise EmptyInputError(f"a flow needs at least 20 vectors to fit, got {len(x)}")
        if not np.isfinite(x).all():
            raise InputValidationError("vectors contain NaN or inf; cannot fit a flow")
        started = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(x))
        n_val = max(1, int(round(len(x) * self.validation_fraction)))
        val = torch.from_numpy(x[order[:n_val]]).to(self.device)
        train = torch.from_numpy(x[order[n_val:]]).to(self.device)
        d = x.shape[1]
        torch.manual_seed(self.seed)
        flow = Glow(d, self.steps, self.hidden, self.seed).to(self.device)
        with torch.no_grad():  # data-initialise every actnorm on a large first batch
            flow(train[: min(len(train), 4096)])
        optimizer = torch.optim.Adam(flow.parameters(), lr=self.lr)
        to_bits = 1.0 / (d * math.log(2))
        best, best_state, stale, epochs_run, train_bits = math.inf, None, 0, 0, math.nan
        bar = tqdm(range(self.epochs), desc="Fitting flow", disable=not self.show_progress_bar)
        for _ in bar:
            epochs_run += 1
            flow.train()
            perm = torch.from_numpy(rng.permutation(len(train))).to(self.device)
            total = 0.0
            for start in range(0, len(train), self.batch_size):
                batch = train[perm[start : start + self.batch_size]]
                loss = -flow.log_prob(batch).mean()
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]  # torch stub gap
                nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            train_bits = total / len(train) * to_bits
            flow.eval()
            with torch.no_grad():
                val_bits = float(-flow.log_prob(val).mean()) * to_bits
            bar.set_postfix(train_bpd=f"{train_bits:.3f}", val_bpd=f"{val_bits:.3f}")
            if val_bits < best - 1e-4:
                best, stale = val_bits, 0
                best_state = {k: v.detach().clone() for k, v in flow.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        bar.close()
        assert best_state is not None
        flow.load_state_dict(best_state)
        flow.eval()
        self.flow = flow
        self.n_fitted = len(x)
        self.created = datetime.now(UTC).isoformat(timespec="seconds")
        self.report = FitReport(epochs_run, train_bits, best, time.perf_counter() - started)
        self.d = d
        return self

    def _run(self, x: Embeddings, fn: str, batch: int = 8192) -> np.ndarray:
        flow = self._flow()
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.dimension:
            raise DimensionMismatchError(
                f"flow expects vectors of shape (n, {self.dimension}), got {arr.shape}"
            )
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(arr), batch):
                chunk = torch.from_numpy(arr[start : start + batch]).to(self.device)
                if fn == "forward":
                    out = flow(chunk)[0]
                elif fn == "inverse":
                    out = flow.inverse(chunk)
                else:
                    out = flow.log_prob(chunk)
                outputs.append(out.float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, self.dimension), np.float32)

    def transform(self, embeddings: Embeddings) -> Embeddings:
        """z = f(x): float32 (n, d) latent vectors, approximately N(0, I) on the fitted corpus.

        Raises:
            NotFittedError, DimensionMismatchError.
        """
        return self._run(embeddings, "forward").astype(np.float32)

    def inverse(self, latents: Embeddings) -> Embeddings:
        """x = f^{-1}(z): float32 (n, d) sentence vectors back from latents."""
        return self._run(latents, "inverse").astype(np.float32)

    def log_prob(self, embeddings: Embeddings) -> Float64Array:
        """log p(x) under the flow, float64 (n,), in nats (higher: more typical)."""
        return self._run(embeddings, "log_prob").astype(np.float64)

    @property
    def metadata(self) -> dict[str, Any]:
        """The JSON metadata written beside the tensors."""
        report = self.report
        return {
            "type": self.kind,
            "model": self.model,
            "pooling": self.pooling,
            "dimension": self.dimension,
            "n_components": self.dimension,
            "steps": self.steps,
            "hidden": self.hidden,
            "seed": self.seed,
            "n_fitted": self.n_fitted,
            "created": self.created,
            "epochs_run": None if report is None else report.epochs,
            "validation_bits_per_dim": None if report is None else report.validation_bits_per_dim,
            "fit_seconds": None if report is None else report.seconds,
            "sentsim_version": __version__,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``transform.safetensors`` (the flow's parameters and buffers) and
        ``transform.json`` into folder ``path``. Never pickle."""
        flow = self._flow()
        folder = Path(path)
        metadata = self.metadata
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in flow.state_dict().items()}
        write_durably(folder / TENSORS_FILE, save(tensors))
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
        device: str | None = None,
    ) -> FlowTransform:
        """Read a flow written by ``save`` and check it fits the encoder in use.

        Raises:
            ArtifactNotFoundError: Missing files.
            InputValidationError: The folder holds another kind of transform.
            TransformMismatchError: Another model, pooling or dimension (named in the message).
        """
        folder, meta = read_checked_metadata(
            path, cls.kind, model=model, pooling=pooling, dimension=dimension
        )
        obj = cls(
            steps=meta["steps"],
            hidden=meta["hidden"],
            seed=meta["seed"],
            device=device,
            model=meta["model"],
            pooling=meta["pooling"],
        )
        flow = Glow(meta["dimension"], meta["steps"], meta["hidden"], meta["seed"])
        flow.load_state_dict(load_file(str(folder / TENSORS_FILE)))
        obj.flow = flow.to(obj.device).eval()
        obj.d = int(meta["dimension"])
        obj.n_fitted, obj.created = meta["n_fitted"], meta["created"]
        if meta.get("epochs_run") is not None:
            obj.report = FitReport(
                meta["epochs_run"], math.nan, meta["validation_bits_per_dim"], meta["fit_seconds"]
            )
        return obj
