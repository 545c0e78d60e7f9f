"""The ``EmbeddingTransform`` protocol shared by whitening and flow."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, Self

from app.core.errors import ArtifactNotFoundError, InputValidationError, TransformMismatchError
from app.core.files import write_durably
from app.core.types import Embeddings

TENSORS_FILE = "transform.safetensors"
METADATA_FILE = "transform.json"


class EmbeddingTransform(Protocol):
    """A fitted map from encoder vectors (n, d) to corrected vectors (n, k).

    Attributes:
        model: Name of the model whose vectors it was fitted on (``None`` if not recorded).
        pooling: Pooling mode of those vectors (``None`` if not recorded).
    """

    model: str | None
    pooling: str | None

    @property
    def dimension(self) -> int:
        """d, the input dimension."""
        ...

    @property
    def n_components(self) -> int:
        """k, the output dimension."""
        ...

    @property
    def metadata(self) -> dict[str, Any]:
        """What ``save`` writes to transform.json (type, model, pooling, dimension, ...)."""
        ...

    def fit(self, embeddings: Embeddings | Iterable[Embeddings]) -> Self:
        """Fit on float32 vectors (n, d), or on an iterable of such batches."""
        ...

    def transform(self, embeddings: Embeddings) -> Embeddings:
        """Map float32 vectors (n, d) to float32 (n, k)."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write the transform to folder ``path`` (safetensors + JSON); return the folder."""
        ...


def read_metadata(folder: Path) -> dict[str, Any]:
    """A saved transform's ``transform.json``.

    Raises:
        ArtifactNotFoundError: The folder or one of its two files is missing.
    """
    for file in (folder / METADATA_FILE, folder / TENSORS_FILE):
        if not file.is_file():
            raise ArtifactNotFoundError(f"{file} not found: is {folder} a saved transform?")
    meta: dict[str, Any] = json.loads((folder / METADATA_FILE).read_text("utf-8"))
    return meta


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    """Write ``transform.json`` (after the tensors, so a complete pair marks a saved transform)."""
    text = json.dumps(metadata, indent=2) + "\n"
    write_durably(folder / METADATA_FILE, text.encode("utf-8"))


def read_checked_metadata(
    path: str | Path,
    kind: str,
    *,
    model: str | None,
    pooling: str | None,
    dimension: int | None,
) -> tuple[Path, dict[str, Any]]:
    """The folder and metadata of a saved transform of type ``kind``, fit for the encoder.

    Raises:
        ArtifactNotFoundError: Missing files.
        InputValidationError: Another type of transform.
        TransformMismatchError: Another model, pooling or dimension.
    """
    folder = Path(path)
    meta = read_metadata(folder)
    if meta.get("type") != kind:
        raise InputValidationError(f"{folder} holds a {meta.get('type')!r} transform, not {kind!r}")
    check_compatible(meta, folder, model=model, pooling=pooling, dimension=dimension)
    return folder, meta


def check_compatible(
    meta: dict[str, Any],
    where: Path,
    *,
    model: str | None,
    pooling: str | None,
    dimension: int | None,
) -> None:
    """Refuse a saved transform's metadata that does not match the encoder in use.

    Raises:
        TransformMismatchError: Every field that differs is named with both values.
    """
    expected = {"model": model, "pooling": pooling, "dimension": dimension}
    problems = [
        f"{field} {meta.get(field)!r} (encoder in use: {value!r})"
        for field, value in expected.items()
        if value is not None and meta.get(field) != value
    ]
    if problems:
        raise TransformMismatchError(
            f"transform {where} was fitted for another encoder: "
            + "; ".join(problems)
            + ". Refit it for this encoder (sentsim fit-whitening) or select the matching model."
        )
