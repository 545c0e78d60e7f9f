"""Loading a saved transform of any type (whitening or flow): the one place that knows both,
so that ``base`` (the protocol and the metadata they share) imports neither."""

from __future__ import annotations

from pathlib import Path

from app.core.errors import InputValidationError
from app.transforms.base import EmbeddingTransform, read_metadata


def load_transform(
    path: str | Path,
    *,
    model: str | None = None,
    pooling: str | None = None,
    dimension: int | None = None,
) -> EmbeddingTransform:
    """Load a saved transform of any type (``whitening`` or ``flow``), checked against the
    encoder in use like ``Whitening.load``.

    Raises:
        ArtifactNotFoundError, TransformMismatchError: As the type's ``load``.
        InputValidationError: An unknown transform type.
    """
    folder = Path(path)
    kind = read_metadata(folder).get("type")
    if kind == "whitening":
        from app.transforms.whitening import Whitening

        return Whitening.load(folder, model=model, pooling=pooling, dimension=dimension)
    if kind == "flow":
        from app.transforms.flow import FlowTransform

        return FlowTransform.load(folder, model=model, pooling=pooling, dimension=dimension)
    raise InputValidationError(f"{folder} holds an unknown transform type {kind!r}")
