"""Pooling: token vectors of an encoder's layers to one sentence vector (DESIGN.md §1).

The functions take torch tensors but only call tensor methods, so this module does not import
torch itself (it is imported by ``app.encoding.bert``, which does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.errors import InputValidationError

if TYPE_CHECKING:
    from torch import Tensor

#: Pooling modes. ``first_last_avg`` is the BERT-whitening paper's default (Su et al. 2021,
#: arXiv 2103.15316); ``mean`` is what sentence-transformers models such as all-MiniLM-L6-v2
#: were trained with.
POOLING_MODES: tuple[str, ...] = ("cls", "mean", "first_last_avg", "last2avg")


def check_pooling(pooling: str) -> str:
    """Return ``pooling`` if it is a known mode.

    Raises:
        InputValidationError: ``pooling`` is not one of ``POOLING_MODES`` (the message lists them).
    """
    if pooling not in POOLING_MODES:
        raise InputValidationError(
            f"unknown pooling {pooling!r}; choose one of {', '.join(POOLING_MODES)}"
        )
    return pooling


def needs_hidden_states(pooling: str) -> bool:
    """Whether ``pooling`` reads layers other than the last (``output_hidden_states=True``)."""
    return pooling in ("first_last_avg", "last2avg")


def masked_mean(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of token vectors over the real tokens, padding excluded.

    Args:
        token_embeddings: float tensor (n, T, d).
        attention_mask: int or bool tensor (n, T), 1 for real tokens (special tokens included,
            as sentence-transformers does), 0 for padding.

    Returns:
        Float tensor (n, d). A row with no real token gives zeros rather than NaN.
    """
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    summed = (token_embeddings * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1.0)
    return summed / counts


def pool(
    pooling: str,
    attention_mask: Tensor,
    last_hidden_state: Tensor,
    hidden_states: tuple[Tensor, ...] | None = None,
) -> Tensor:
    """Pool one batch of encoder outputs into sentence vectors.

    Args:
        pooling: One of ``POOLING_MODES``.
        attention_mask: Tensor (n, T), 1 for real tokens, 0 for padding.
        last_hidden_state: Float tensor (n, T, d), the last layer.
        hidden_states: The L+1 layer outputs, each (n, T, d), index 0 the embedding layer;
            needed for ``first_last_avg`` and ``last2avg``.

    Returns:
        Float tensor (n, d).

    Raises:
        InputValidationError: Unknown ``pooling``, or hidden states missing for a mode that
            needs them.
    """
    check_pooling(pooling)
    if pooling == "cls":
        return last_hidden_state[:, 0]
    if pooling == "mean":
        return masked_mean(last_hidden_state, attention_mask)
    if hidden_states is None or len(hidden_states) < 3:
        raise InputValidationError(
            f"pooling {pooling!r} needs all layers' hidden states (output_hidden_states=True)"
        )
    first = hidden_states[1] if pooling == "first_last_avg" else hidden_states[-2]
    return masked_mean((first + hidden_states[-1]) / 2, attention_mask)
