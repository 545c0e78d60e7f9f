"""Word Mover's and Word Rotator's Distance: optimal transport between token vectors.

Two sentences are compared as weighted point sets of their contextual token vectors
``xs`` (n_s, d) and ``xt`` (n_t, d) (special tokens and padding removed), by the
optimal-transport cost

    W(a, b) = min_{gamma >= 0} sum_ij gamma_ij * M_ij   s.t.  gamma 1 = a,  gamma^T 1 = b

(DESIGN.md §4). Names follow POT: point clouds ``xs``/``xt``, their weights ``a``/``b``
(the marginals), ``M`` the cost matrix
and ``gamma`` the plan, solved exactly with POT's network simplex (``ot.emd2``) or
approximately with entropic Sinkhorn (``ot.sinkhorn2``).

- WMD, Word Mover's Distance (Kusner, Sun, Kolkin, Weinberger, "From Word Embeddings To
  Document Distances", ICML 2015): uniform (or idf) weights, Euclidean cost. In [0, inf),
  lower is closer.
- WRD, Word Rotator's Distance (Yokoi, Takahashi, Akama, Suzuki, Inui, "Word Rotator's
  Distance", EMNLP 2020): weights proportional to the vectors' norms (how much a token matters),
  cost 1 - cos (what it means). In [0, 2], lower is closer.

Cheap lower bounds prune exact solves when ranking many candidates (Kusner et al. §4): the
centroid distance (WCD; for WRD the cosine analogue ½‖Σp·â − Σq·b̂‖², since 1 − cos(u, v) =
½‖û − v̂‖² is convex) and the relaxed WMD (each token sends all its mass to its cheapest
partner, one marginal dropped; the larger of the two relaxations).

Only numpy and POT: no torch, no web code.
"""

from __future__ import annotations

import functools
import heapq
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from app.core.errors import DimensionMismatchError, EmptyInputError, InputValidationError

Tokens = npt.NDArray[np.float32]  # (n_tokens, d)
Weights = npt.NDArray[np.float64]  # (n_tokens,), non-negative, sums to 1
TransportMethod = Literal["wmd", "wrd"]
Solver = Literal["emd", "sinkhorn"]

_EPS = 1e-12


@dataclass(frozen=True)
class Transport:
    """An optimal-transport result.

    Attributes:
        distance: The transport cost (WMD in [0, inf), WRD in [0, 2]); lower is closer.
        plan: gamma, float64 (n_s, n_t): mass moved from token i of the first sentence to
            token j of the second; rows sum to ``a``, columns to ``b``.
    """

    distance: float
    plan: npt.NDArray[np.float64]


def _check(xs: npt.ArrayLike, xt: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(xt, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DimensionMismatchError(
            f"need token matrices (n_s, d) and (n_t, d), got {x.shape}, {y.shape}"
        )
    if len(x) == 0 or len(y) == 0:
        raise EmptyInputError("a sentence without tokens has no transport distance")
    return x, y


def _marginal(weights: npt.ArrayLike | None, n: int) -> Weights:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise InputValidationError(f"weights must be {n} non-negative numbers with a positive sum")
    return np.asarray(w / w.sum(), dtype=np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS))


def _measure_weights(
    method: TransportMethod,
    xs: np.ndarray,
    xt: np.ndarray,
    a: npt.ArrayLike | None,
    b: npt.ArrayLike | None,
) -> tuple[Weights, Weights]:
    """The marginals of a method: norms for WRD, given (or uniform) weights for WMD."""
    if method == "wrd":
        return norm_weights(xs), norm_weights(xt)
    return _marginal(a, len(xs)), _marginal(b, len(xt))


def norm_weights(tokens: npt.ArrayLike) -> Weights:
    """WRD's weights: each token's vector norm, normalised to sum to 1, float64 (n,)."""
    norms = np.linalg.norm(np.asarray(tokens, dtype=np.float64), axis=1)
    return _marginal(norms if norms.sum() > 0 else None, len(norms))


def cost_matrix(
    xs: npt.ArrayLike, xt: npt.ArrayLike, metric: Literal["euclidean", "cosine"]
) -> npt.NDArray[np.float64]:
    """Pairwise cost M, float64 (n_s, n_t), between the rows of ``xs`` (n_s, d) and ``xt``
    (n_t, d): Euclidean distance, or 1 - cosine in [0, 2] (as POT's ``ot.dist``).

    Raises:
        DimensionMismatchError: Not (n_s, d) and (n_t, d).
    """
    x, y = _check(xs, xt)
    if metric == "euclidean":
        sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
        return np.asarray(np.sqrt(np.maximum(sq, 0.0)), dtype=np.float64)
    return np.asarray(np.clip(1.0 - _unit(x) @ _unit(y).T, 0.0, 2.0), dtype=np.float64)


@functools.cache
def _pot() -> ModuleType:
    """POT, imported at the first solve: it pulls in scikit-learn and SciPy (3.5 s of every
    server start when imported with this module). POT registers a torch backend by importing
    torch when it is installed; sentsim passes it numpy arrays only, so that is switched off
    (POT's documented switch; a value the user set wins)."""
    os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")
    import ot

    return cast(ModuleType, ot)


def _solve(p: Weights, q: Weights, M: np.ndarray, solver: Solver, reg: float) -> Transport:
    ot = _pot()
    if solver == "emd":
        plan = ot.emd(p, q, M)
    elif solver == "sinkhorn":
        # Scale-free regularisation: reg is relative to the largest cost.
        plan = ot.sinkhorn(p, q, M, reg * max(float(M.max()), _EPS))
    else:
        raise InputValidationError(f"unknown solver {solver!r}; choose emd or sinkhorn")
    return Transport(float((plan * M).sum()), np.asarray(plan, dtype=np.float64))


def word_movers_distance(
    xs: npt.ArrayLike,
    xt: npt.ArrayLike,
    a: npt.ArrayLike | None = None,
    b: npt.ArrayLike | None = None,
    *,
    solver: Solver = "emd",
    reg: float = 0.05,
) -> Transport:
    """WMD between two sentences' token vectors (Kusner et al. 2015).

    Args:
        xs: float (n_s, d) token vectors of the first sentence (POT's source samples).
        xt: float (n_t, d) token vectors of the second (the target samples).
        a: (n_s,) non-negative weights of ``xs``'s tokens (e.g. idf), normalised here;
            ``None``: uniform 1/n_s (POT's ``a``).
        b: (n_t,) likewise for ``xt`` (POT's ``b``).
        solver: ``emd`` (exact network simplex, POT ``ot.emd``) or ``sinkhorn`` (entropic,
            approximate, an upper bound of the exact cost).
        reg: Sinkhorn's regularisation, relative to the largest cost.

    Returns:
        The distance in [0, inf), lower is closer (0 for identical sentences), and the plan
        gamma (n_s, n_t).

    Raises:
        DimensionMismatchError, EmptyInputError, InputValidationError.
    """
    M = cost_matrix(xs, xt, "euclidean")
    return _solve(_marginal(a, M.shape[0]), _marginal(b, M.shape[1]), M, solver, reg)


def word_rotators_distance(
    xs: npt.ArrayLike, xt: npt.ArrayLike, *, solver: Solver = "emd", reg: float = 0.05
) -> Transport:
    """WRD between two sentences' token vectors (Yokoi et al. 2020): norm weights, cosine cost.

    Args:
        xs: float (n_s, d) token vectors of the first sentence.
        xt: float (n_t, d) token vectors of the second.
        solver: ``emd`` (exact) or ``sinkhorn`` (approximate).
        reg: Sinkhorn's regularisation, relative to the largest cost.

    Returns:
        The distance in [0, 2], lower is closer (0 for identical sentences), and the plan
        gamma (n_s, n_t).

    Raises:
        DimensionMismatchError, EmptyInputError, InputValidationError.
    """
    M = cost_matrix(xs, xt, "cosine")
    return _solve(norm_weights(xs), norm_weights(xt), M, solver, reg)


def word_centroid_distance(
    xs: npt.ArrayLike,
    xt: npt.ArrayLike,
    method: TransportMethod,
    a: npt.ArrayLike | None = None,
    b: npt.ArrayLike | None = None,
) -> float:
    """A lower bound of WMD or WRD from the weighted centroids (never above the exact cost).

    WMD: ‖Σ a_i xs_i − Σ b_j xt_j‖. WRD: ½‖Σ a_i x̂s_i − Σ b_j x̂t_j‖² with unit vectors.
    """
    x, y = _check(xs, xt)
    p, q = _measure_weights(method, x, y, a, b)
    if method == "wrd":
        return 0.5 * float(np.sum((p @ _unit(x) - q @ _unit(y)) ** 2))
    return float(np.linalg.norm(p @ x - q @ y))


def relaxed_distance(
    xs: npt.ArrayLike,
    xt: npt.ArrayLike,
    method: TransportMethod,
    a: npt.ArrayLike | None = None,
    b: npt.ArrayLike | None = None,
) -> float:
    """Relaxed WMD / WRD: the larger of the two one-marginal relaxations (a lower bound)."""
    x, y = _check(xs, xt)
    M = cost_matrix(x, y, "cosine" if method == "wrd" else "euclidean")
    p, q = _measure_weights(method, x, y, a, b)
    return float(max(p @ M.min(axis=1), q @ M.min(axis=0)))


def transport_distance(
    xs: npt.ArrayLike,
    xt: npt.ArrayLike,
    method: TransportMethod,
    a: npt.ArrayLike | None = None,
    b: npt.ArrayLike | None = None,
    *,
    solver: Solver = "emd",
) -> Transport:
    """WMD or WRD by name (``method``: ``wmd`` | ``wrd``) between token vectors ``xs``
    (n_s, d) and ``xt`` (n_t, d) with WMD weights ``a`` (n_s,) and ``b`` (n_t,).

    Raises:
        InputValidationError: Unknown method (WRD takes no weights: they are the norms).
    """
    if method == "wrd":
        return word_rotators_distance(xs, xt, solver=solver)
    if method == "wmd":
        return word_movers_distance(xs, xt, a, b, solver=solver)
    raise InputValidationError(f"unknown transport method {method!r}; choose wmd or wrd")


def distance_to_score(distance: float, method: TransportMethod) -> float:
    """The API's "higher is more similar" score: 1 − WRD in [−1, 1]; 1 / (1 + WMD) in (0, 1]."""
    return 1.0 - distance if method == "wrd" else 1.0 / (1.0 + distance)


def top_k_transport(
    query: npt.ArrayLike,
    candidates: Sequence[np.ndarray],
    k: int,
    method: TransportMethod,
    *,
    query_weights: npt.ArrayLike | None = None,
    candidate_weights: Sequence[npt.ArrayLike | None] | None = None,
) -> list[tuple[int, float]]:
    """The k candidates closest to the query by exact WMD / WRD, pruning with lower bounds.

    Candidates are visited by increasing centroid bound; once k exact distances are known, a
    candidate whose centroid bound (and then relaxed bound) is not below the k-th best cannot
    enter the top k and is skipped without an exact solve. The result equals brute force
    (ties aside).

    Args:
        query: float (m, d) token vectors.
        candidates: c arrays (n_i, d).
        k: How many to return.
        method: ``wmd`` or ``wrd``.
        query_weights: WMD weights of the query tokens (``None``: uniform).
        candidate_weights: WMD weights per candidate (``None``: uniform).

    Returns:
        Up to k ``(candidate index, distance)`` pairs, closest first. Candidates without
        tokens are left out.
    """
    if k < 1:
        return []
    weights = list(candidate_weights) if candidate_weights is not None else [None] * len(candidates)
    usable = [i for i, c in enumerate(candidates) if len(c)]
    bounds = sorted(
        (word_centroid_distance(query, candidates[i], method, query_weights, weights[i]), i)
        for i in usable
    )
    best: list[tuple[float, int]] = []  # max-heap of the k best, as (-distance, index)
    for wcd, i in bounds:
        if len(best) == k and wcd >= -best[0][0]:
            break  # every later candidate has a larger centroid bound
        if (
            len(best) == k
            and relaxed_distance(query, candidates[i], method, query_weights, weights[i])
            >= -best[0][0]
        ):
            continue
        d = transport_distance(query, candidates[i], method, query_weights, weights[i]).distance
        if len(best) < k:
            heapq.heappush(best, (-d, i))
        elif d < -best[0][0]:
            heapq.heapreplace(best, (-d, i))
    return sorted(((i, -nd) for nd, i in best), key=lambda t: t[1])


class IdfWeights:
    """Inverse document frequency of tokens, fitted on a corpus (for WMD's weights).

    idf(t) = ln((1 + N) / (1 + df(t))) + 1 (smoothed, as scikit-learn), so unseen tokens get the
    largest weight.

    Example:
        >>> idf = IdfWeights().fit([["a", "dog"], ["a", "cat"]])
        >>> idf.weights(["a", "dog"])  # normalised to sum 1
    """

    def __init__(self) -> None:
        self.n_documents = 0
        self.document_frequency: Counter[str] = Counter()

    def fit(self, documents: Sequence[Sequence[str]]) -> IdfWeights:
        """Count in how many documents (token lists) each token occurs."""
        self.n_documents = len(documents)
        self.document_frequency = Counter(t for doc in documents for t in set(doc))
        return self

    def idf(self, token: str) -> float:
        """The token's idf (> 0)."""
        df = self.document_frequency.get(token, 0)
        return math.log((1 + self.n_documents) / (1 + df)) + 1.0

    def weights(self, tokens: Sequence[str]) -> Weights:
        """Normalised idf weights of a sentence's tokens, float64 (n,), summing to 1."""
        if not tokens:
            return np.zeros(0)
        return _marginal(np.array([self.idf(t) for t in tokens]), len(tokens))
