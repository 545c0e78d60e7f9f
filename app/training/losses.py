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

from collections.abc import Sequence

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
    groups: Tensor | None = None,
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
        groups: Long tensor (n,), the same-meaning group of each pair (``pair_groups``): a
            sentence of another pair of the same group is left out of the softmax, not taken
            for a negative. ``None``: every pair its own group.

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
    if groups is None:
        groups = torch.arange(n)
    groups = groups.to(a.device)
    if negatives == "partners":
        cos = a @ b.T
        eye = torch.eye(n, dtype=torch.bool, device=cos.device)
        logits = scale * (cos - margin * eye.float())
        logits = logits.masked_fill((groups[:, None] == groups[None, :]) & ~eye, float("-inf"))
        target = torch.arange(n, device=cos.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    both = torch.cat([a, b])
    cos = both @ both.T
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(cos.device)
    partner = F.one_hot(target, 2 * n).bool()
    logits = scale * (cos - margin * partner.float())
    group = torch.cat([groups, groups])
    same_group = (group[:, None] == group[None, :]) & ~partner  # the sentence itself included
    return F.cross_entropy(logits.masked_fill(same_group, float("-inf")), target)


def pair_groups(first: Sequence[str], second: Sequence[str]) -> Tensor:
    """Same-meaning groups of a batch of positive pairs: two pairs that share a sentence
    (exact text, either side) are one group, transitively (union-find).

    Paraphrase corpora repeat questions across pairs (quora-para: 14,099 distinct sentences in
    its first 8,000 pairs), so a batch can hold a copy of a sentence or of its partner; such a
    sentence is no negative.

    Args:
        first: The pairs' first sentences, n of them.
        second: Their partners, n.

    Returns:
        Long tensor (n,): pairs with equal values belong together.
    """
    parent = list(range(len(first)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[str, int] = {}
    for i, (x, y) in enumerate(zip(first, second, strict=True)):
        for text in (x, y):
            j = seen.setdefault(text, i)
            parent[root(i)] = root(j)
    return torch.tensor([root(i) for i in range(len(first))])


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
