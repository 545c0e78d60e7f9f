"""Parse transform specs such as ``whitening-128:0,0`` (the ``--transform`` CLI flag)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.errors import InputValidationError

_SPEC = re.compile(
    r"^(?P<kind>none|whitening|flow)(?:-(?P<k>\d+))?(?::(?P<beta>[^,]+),(?P<gamma>.+))?$"
)


@dataclass(frozen=True)
class TransformSpec:
    """What transform to fit.

    Attributes:
        kind: ``none``, ``whitening`` or ``flow`` (BERT-flow, default knobs).
        n_components: k, the output dimension; ``None`` keeps all d.
        beta: How much of the mean is removed, in [0, 1] (DESIGN.md §2).
        gamma: How much the variances are equalised, in [0, 1].
    """

    kind: str
    n_components: int | None = None
    beta: float = 1.0
    gamma: float = 1.0

    @property
    def label(self) -> str:
        """The spec written back in the flag's syntax, e.g. ``whitening-128:0,0``."""
        if self.kind == "none":
            return "none"
        text = self.kind + (f"-{self.n_components}" if self.n_components else "")
        if (self.beta, self.gamma) != (1.0, 1.0):
            text += f":{self.beta:g},{self.gamma:g}"
        return text


def parse_transform_spec(text: str) -> TransformSpec:
    """Parse ``none`` | ``flow`` | ``whitening`` | ``whitening-K``, optionally ``:beta,gamma``.

    Raises:
        InputValidationError: The text does not follow that syntax, K < 1, or beta/gamma are
            not numbers in [0, 1].
    """
    match = _SPEC.match(text.strip())
    hint = "expected none, flow, whitening, whitening-K or whitening[-K]:beta,gamma"
    if match is None:
        raise InputValidationError(f"bad transform {text!r}: {hint} (e.g. whitening-128:0,0)")
    kind = match["kind"]
    if kind in ("none", "flow") and (match["k"] or match["beta"]):
        raise InputValidationError(f"bad transform {text!r}: {kind!r} takes no arguments")
    k = int(match["k"]) if match["k"] else None
    if k is not None and k < 1:
        raise InputValidationError(f"bad transform {text!r}: K must be >= 1")
    try:
        beta = float(match["beta"]) if match["beta"] else 1.0
        gamma = float(match["gamma"]) if match["gamma"] else 1.0
    except ValueError:
        raise InputValidationError(f"bad transform {text!r}: {hint}") from None
    for name, value in (("beta", beta), ("gamma", gamma)):
        if not 0.0 <= value <= 1.0:
            raise InputValidationError(f"bad transform {text!r}: {name} must be in [0, 1]")
    return TransformSpec(kind, k, beta, gamma)
