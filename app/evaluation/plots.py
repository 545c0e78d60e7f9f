"""PNG plots of an STS evaluation: predicted vs gold scores per grid row, and the eigenvalue
spectrum of the compared vectors' covariance (before whitening: a few directions dominate,
the anisotropy BERT-whitening removes; after: flat). matplotlib, headless (Agg)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class StsPlotRow:
    """One grid row to plot.

    Attributes:
        name: What the row is (``fp32 mean whitening-256``); also the file name, made safe.
        scores: float (n,) predicted similarities, higher is more similar.
        spearman: Its Spearman x100 against the gold.
        spectrum: float (k,) covariance eigenvalues of the compared vectors, largest first,
            or ``None`` (token-level methods).
    """

    name: str
    scores: npt.NDArray[np.float64]
    spearman: float
    spectrum: npt.NDArray[np.float64] | None = None


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "row"


def write_sts_plots(
    folder: str | Path, gold: Sequence[float] | np.ndarray, rows: Sequence[StsPlotRow]
) -> list[Path]:
    """Write ``scatter-<row>.png`` per row (predicted score vs gold, with its Spearman) and,
    when any row has a spectrum, ``spectrum.png`` (every row's eigenvalues, log scale).

    Args:
        folder: Created if missing.
        gold: (n,) gold scores of the pairs, in the rows' pair order.
        rows: The grid rows.

    Returns:
        The files written, in that order.

    Raises:
        ValueError: A row's scores and the gold differ in length.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    g = np.asarray(gold, dtype=np.float64)
    written: list[Path] = []
    for row in rows:
        if len(row.scores) != len(g):
            raise ValueError(f"row {row.name!r} has {len(row.scores)} scores for {len(g)} pairs")
        fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
        ax.scatter(g, row.scores, s=4, alpha=0.4, linewidths=0)
        ax.set_xlabel("gold score")
        ax.set_ylabel("predicted similarity")
        ax.set_title(f"{row.name}\nSpearman x100 = {row.spearman:.2f}", fontsize=9)
        fig.tight_layout()
        path = out / f"scatter-{_file_name(row.name)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    spectra = [r for r in rows if r.spectrum is not None]
    if spectra:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for row in spectra:
            assert row.spectrum is not None
            values = np.maximum(row.spectrum, 1e-12)
            ax.plot(np.arange(1, len(values) + 1), values / values.sum(), label=row.name)
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-6)  # constant dimensions (numerically ~1e-15) sit on the floor
        ax.set_xlabel("component (largest first)")
        ax.set_ylabel("share of total variance")
        ax.set_title("Covariance eigenvalue spectrum of the compared vectors", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / "spectrum.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
