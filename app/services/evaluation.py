"""STS evaluation grids: every (precision, pooling, transform) on one pair file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.datasets import StsPairs
from app.core.errors import InputValidationError
from app.core.types import Embeddings
from app.encoding.base import Encoder
from app.evaluation.retrieval import partner_recall_at_1
from app.evaluation.sts import spearman_x100
from app.services.encoders import EncoderOptions, encode_unique, load_encoder
from app.similarity.metrics import pairwise_cos_sim
from app.similarity.ot import IdfWeights, TransportMethod, distance_to_score, transport_distance
from app.transforms.base import EmbeddingTransform
from app.transforms.spec import TransformSpec
from app.transforms.whitening import Whitening

#: A corpus to fit transforms on: (label, sentences); sentences None = the evaluated ones.
FitCorpus = tuple[str, Sequence[str] | None]
EVALUATED: tuple[FitCorpus, ...] = (("evaluated", None),)


@dataclass(frozen=True)
class StsResult:
    """One row of an STS grid.

    Attributes:
        model: The encoder's model name.
        precision: ``fp32``, ``bf16`` or ``int8``.
        pooling: The pooling mode.
        method: The similarity method: ``cosine`` of sentence vectors, or ``wmd`` / ``wrd``
            over token vectors (scored 1 / (1 + WMD), 1 - WRD; pooling ``tokens``).
        transform: ``none`` or ``whitening``.
        n_components: Dimension of the compared vectors (k; d for ``none``).
        beta: Whitening's beta (``None`` for ``none``).
        gamma: Whitening's gamma (``None`` for ``none``).
        fit_on: What the transform was fitted on: ``evaluated`` (the pair file's own 2n
            sentences, as the BERT-whitening paper does) or a corpus path.
        spearman: Spearman x100 between the scores and the gold, in [-100, 100].
        n_pairs: Number of pairs evaluated.
        scores: float64 (n_pairs,) the predicted similarities, higher is more similar (for
            plots; not in ``to_json``).
        spectrum: float64 (k,) eigenvalues of the covariance of the compared sentence
            vectors, largest first (cosine rows; ``None`` for transport).
    """

    model: str
    precision: str
    pooling: str
    method: str
    transform: str
    n_components: int
    beta: float | None
    gamma: float | None
    fit_on: str | None
    spearman: float
    n_pairs: int
    label: str
    scores: npt.NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    spectrum: npt.NDArray[np.float64] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object (the ``--json`` output of ``sentsim eval-sts``)."""
        row = asdict(self)
        del row["scores"], row["spectrum"]
        return row


def fit_transform_spec(
    spec: TransformSpec, fit_vectors: Embeddings, *, model: str, pooling: str
) -> EmbeddingTransform | None:
    """Fit the transform a spec names on float32 vectors (N, d); ``None`` for ``none``."""
    if spec.kind == "none":
        return None
    if spec.kind == "flow":
        from app.transforms.flow import FlowTransform  # torch: imported only when used

        return FlowTransform(model=model, pooling=pooling).fit(fit_vectors)
    return Whitening(
        spec.n_components, beta=spec.beta, gamma=spec.gamma, model=model, pooling=pooling
    ).fit(fit_vectors)


def evaluate_encoder(
    encoder: Encoder,
    pairs: StsPairs,
    specs: Sequence[TransformSpec],
    *,
    fit_corpora: Sequence[FitCorpus] = EVALUATED,
    show_progress_bar: bool = False,
) -> list[StsResult]:
    """Score every transform spec, fitted on every corpus, for one encoder; each distinct
    sentence is encoded once.

    Args:
        encoder: The encoder (its pooling is the one evaluated).
        pairs: The labelled pairs.
        specs: Transforms to fit and compare (``none`` included if wanted).
        fit_corpora: ``(label, sentences)`` to fit transforms on, each in turn; sentences
            ``None`` means the pairs' own 2n sentences (duplicates kept, as the BERT-whitening
            paper does). ``none`` is scored once.
        show_progress_bar: Show encoding progress.

    Returns:
        One ``StsResult`` per (corpus, spec), in order.
    """
    n = len(pairs)
    vectors = encode_unique(encoder, pairs.sentences, show_progress_bar)
    a, b = vectors[:n], vectors[n:]
    results = []
    for position, (label, corpus) in enumerate(fit_corpora):
        fitted = [s for s in specs if s.kind != "none" or position == 0]
        fit_vectors = vectors
        if corpus is not None and any(s.kind != "none" for s in fitted):
            fit_vectors = encode_unique(encoder, corpus, show_progress_bar)
        results += _score_specs(encoder, pairs, a, b, fitted, fit_vectors, label)
    return results


def _score_specs(
    encoder: Encoder,
    pairs: StsPairs,
    a: Embeddings,
    b: Embeddings,
    specs: Sequence[TransformSpec],
    fit_vectors: Embeddings,
    fit_on: str,
) -> list[StsResult]:
    results = []
    n = len(pairs)
    for spec in specs:
        transform = fit_transform_spec(
            spec, fit_vectors, model=encoder.model_name, pooling=encoder.pooling
        )
        ta, tb = (a, b) if transform is None else (transform.transform(a), transform.transform(b))
        scores = np.asarray(pairwise_cos_sim(ta, tb), dtype=np.float64)
        compared = np.concatenate([ta, tb]).astype(np.float64)
        spectrum = np.linalg.eigvalsh(np.cov(compared, rowvar=False))[::-1]
        results.append(
            StsResult(
                model=encoder.model_name,
                precision=encoder.precision,
                pooling=encoder.pooling,
                method="cosine",
                transform=spec.kind,
                n_components=ta.shape[1],
                beta=spec.beta if spec.kind == "whitening" else None,
                gamma=spec.gamma if spec.kind == "whitening" else None,
                fit_on=None if transform is None else fit_on,
                spearman=spearman_x100(scores, pairs.scores),
                n_pairs=n,
                label=spec.label,
                scores=scores,
                spectrum=np.maximum(spectrum, 0.0),
            )
        )
    return results


#: Transport methods of eval-sts: WMD, WMD with idf weights (fitted on the evaluated
#: sentences, as whitening is), WRD.
TRANSPORT_EVAL_METHODS = ("wmd", "wmd-idf", "wrd")


def _check_transport_method(method: str) -> None:
    if method not in TRANSPORT_EVAL_METHODS:
        raise InputValidationError(
            f"unknown method {method!r}; choose cosine, {', '.join(TRANSPORT_EVAL_METHODS)}"
        )


def evaluate_transport(encoder: Encoder, pairs: StsPairs, method: str) -> StsResult:
    """Spearman of WMD / WMD-idf / WRD over the last layer's token vectors (exact transport).

    Raises:
        InputValidationError: Unknown method.
    """
    _check_transport_method(method)
    transport: TransportMethod = "wrd" if method == "wrd" else "wmd"
    index: dict[str, int] = {}
    rows = [index.setdefault(s, len(index)) for s in pairs.sentences]
    tokens = encoder.encode_tokens(list(index))
    weights: list[np.ndarray | None] = [None] * len(tokens)
    if method == "wmd-idf":
        words = encoder.tokenize(list(index))
        idf = IdfWeights().fit([words[i] for i in rows])  # document frequency over all 2n
        weights = [idf.weights(w) for w in words]
    n = len(pairs)
    scores = [
        distance_to_score(
            transport_distance(tokens[a], tokens[b], transport, weights[a], weights[b]).distance,
            transport,
        )
        for a, b in zip(rows[:n], rows[n:], strict=True)
    ]
    return StsResult(
        model=encoder.model_name,
        precision=encoder.precision,
        pooling="tokens",
        method=method,
        transform="none",
        n_components=encoder.dimension,
        beta=None,
        gamma=None,
        fit_on=None,
        spearman=spearman_x100(scores, pairs.scores),
        n_pairs=n,
        label="none",
        scores=np.asarray(scores, dtype=np.float64),
    )


def evaluate_sts_grid(
    pairs: StsPairs,
    options: EncoderOptions,
    *,
    poolings: Sequence[str],
    precisions: Sequence[str],
    specs: Sequence[TransformSpec],
    methods: Sequence[str] = ("cosine",),
    fit_corpora: Sequence[FitCorpus] = EVALUATED,
    show_progress_bar: bool = False,
) -> list[StsResult]:
    """Evaluate the grid precisions x (poolings x specs for cosine, plus one row per transport
    method), loading the model once per precision.

    Raises:
        ModelLoadError, InputValidationError: From loading the encoder or bad options.
    """
    transport = [m for m in methods if m != "cosine"]
    for m in transport:
        _check_transport_method(m)  # before any model loads
    results: list[StsResult] = []
    for precision in precisions:
        base = load_encoder(replace(options, precision=precision, pooling=poolings[0]))
        for pooling in poolings if "cosine" in methods else ():
            results += evaluate_encoder(
                base.with_pooling(pooling),
                pairs,
                specs,
                fit_corpora=fit_corpora,
                show_progress_bar=show_progress_bar,
            )
        results += [evaluate_transport(base, pairs, m) for m in transport]
    return results


#: What ``dev_score`` measures: Spearman x100 of cosine against graded scores, or recall@1 x100
#: of each sentence's partner among all the pairs' sentences (positive pairs).
DEV_METRICS = ("spearman", "recall@1")


def dev_score(encoder: Encoder, pairs: StsPairs, metric: str) -> float:
    """One number for an encoder on a dev set (higher is better), in [-100, 100] / [0, 100].

    Args:
        encoder: The encoder (its pooling and precision as loaded).
        pairs: The dev pairs.
        metric: ``spearman`` (``spearman_x100`` of cosine against the scores) or ``recall@1``
            (``partner_recall_at_1`` x 100; the scores are not used).

    Raises:
        InputValidationError: Unknown metric.
    """
    if metric == "spearman":
        n = len(pairs)
        vectors = encode_unique(encoder, pairs.sentences, False)
        return spearman_x100(pairwise_cos_sim(vectors[:n], vectors[n:]), pairs.scores)
    if metric == "recall@1":
        couples = list(zip(pairs.sentences1, pairs.sentences2, strict=True))
        return 100 * partner_recall_at_1(couples, lambda s: encode_unique(encoder, s, False))
    raise InputValidationError(f"metric {metric!r}: choose {' or '.join(DEV_METRICS)}")
