"""Fine-tuning losses over sentence vectors.

- AM-Softmax (additive-margin softmax; Wang, Cheng, Liu, Liu, "Additive Margin Softmax for Face
  Verification", IEEE SPL 2018), as the source material applies it to sentence similarity:
  every other sentence of the batch is a negative class, and the true partner's cosine gets a
  margin before the scaled softmax.
- CoSENT (Su, "CoSENT: a more efficient sentence vector scheme than Sentence-BERT", kexue.fm
  2022, #8847): a ranking loss over graded pairs — each pair scored higher by the labels than
  another must have the larger cosine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import Tensor

NEGATIVES = ("partners", "batch")


def am_softmax_loss(
    anchors: Tensor,
    positives: Tensor,
    margin: float = 0.35,
    scale: float = 30.0,
    negatives: str = "partners",
) -> Tensor:
    """In-batch AM-Softmax over positive pairs, both directions.

    ``negatives="partners"``: for a batch of pairs (a_i, b_i) the logits are
    ``scale * (cos(a_i, b_j) - margin * [i = j])`` and the loss is the cross-entropy towards
    ``j = i``, averaged over rows (a -> b) and columns (b -> a). With ``margin = 0`` it is
    sentence-transformers' MultipleNegativesRankingLoss made symmetric.

    ``negatives="batch"``: every pair is a class of two same-meaning sentences, and each of the
    2n sentences is classified among all the other 2n - 1 of the batch (its own side included),
    its partner being the true class: the source's "classifier over groups" with the batch as
    the groups, as SimBERT's retrieval loss draws its negatives. It also pushes apart two
    questions on the same side, which a retrieval over one pool of sentences needs.

    Args:
        anchors: Float tensor (n, d), the first sentences' vectors (not normalised).
        positives: Float tensor (n, d), their partners' vectors.
        margin: m, subtracted from the true pair's cosine (0.35 in the source).
        scale: s, the softmax's inverse temperature (30 in the source).
        negatives: ``partners`` (the other pairs' other side) or ``batch`` (every other
            sentence of the batch).

    Returns:
        A scalar tensor (nats, >= 0; lower is better).

    Raises:
        ValueError: ``negatives`` is neither.
    """
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives {negatives!r}: choose {' or '.join(NEGATIVES)}")
    n = len(anchors)
    a = F.normalize(anchors.float(), dim=-1)
    b = F.normalize(positives.float(), dim=-1)
    if negatives == "partners":
        cos = a @ b.T
        logits = scale * (cos - margin * torch.eye(n, device=cos.device))
        target = torch.arange(n, device=cos.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    both = torch.cat([a, b])
    cos = both @ both.T
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(cos.device)
    partner = F.one_hot(target, 2 * n).bool()
    logits = scale * (cos - margin * partner.float())
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=cos.device)
    return F.cross_entropy(logits.masked_fill(self_mask, float("-inf")), target)


def cosent_loss(first: Tensor, second: Tensor, labels: Tensor, scale: float = 20.0) -> Tensor:
    """CoSENT over graded pairs: ``log(1 + sum over (i, j) with labels_i > labels_j of
    exp(scale * (cos_j - cos_i)))``.

    Args:
        first: Float tensor (n, d), the pairs' first sentences.
        second: Float tensor (n, d), their second sentences.
        labels: Float tensor (n,), the gold similarity (any scale: only its order counts).
        scale: lambda (20 in the source and in sentence-transformers' CoSENTLoss).

    Returns:
        A scalar tensor (nats, >= 0; 0 when no pair outranks another).
    """
    cos = F.cosine_similarity(first.float(), second.float(), dim=-1) * scale
    differences = cos[None, :] - cos[:, None]  # [i, j] = cos_j - cos_i
    outranks = labels[:, None] > labels[None, :]  # [i, j]: pair i should score above pair j
    terms = differences[outranks]
    return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)
