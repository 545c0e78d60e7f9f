"""Fitting and saving transforms for an encoder, streaming the corpus through it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.core.errors import DimensionMismatchError
from app.encoding.base import Encoder
from app.services.encoders import iter_encoded
from app.transforms.whitening import Whitening


def fit_whitening(
    encoder: Encoder,
    corpus: Sequence[str],
    output: str | Path,
    *,
    n_components: int | None = None,
    beta: float = 1.0,
    gamma: float = 1.0,
    show_progress_bar: bool = False,
) -> Whitening:
    """Encode a corpus chunk by chunk, fit BERT-whitening on the stream, and save it.

    Args:
        encoder: The encoder whose vectors are corrected (its model and pooling are recorded).
        corpus: The fitting sentences.
        output: Folder to write (``models/NAME``).
        n_components: k; ``None`` keeps d.
        beta: Share of the mean removed, in [0, 1].
        gamma: Strength of the variance equalisation, in [0, 1].
        show_progress_bar: Show encoding progress.

    Returns:
        The fitted transform, as saved.

    Raises:
        InputValidationError, DimensionMismatchError, EmptyInputError: As ``Whitening``.
    """
    if n_components is not None and n_components > encoder.dimension:
        # Checked before encoding the corpus, not after.
        raise DimensionMismatchError(
            f"n_components={n_components} exceeds the encoder's dimension d={encoder.dimension}"
        )
    whitening = Whitening(
        n_components, beta=beta, gamma=gamma, model=encoder.model_name, pooling=encoder.pooling
    )
    whitening.fit(iter_encoded(encoder, corpus, show_progress_bar=show_progress_bar))
    whitening.save(output)
    return whitening
