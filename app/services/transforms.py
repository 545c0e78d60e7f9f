"""Fitting and saving transforms: for an encoder over a corpus, or for a collection over its
stored vectors; and the registry of named transforms under the models folder."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.errors import (
    ConflictError,
    DimensionMismatchError,
    EmptyInputError,
    InputValidationError,
    ModelLoadError,
    NotFoundError,
    ServiceError,
)
from app.encoding.base import Encoder
from app.index.base import VectorCollection
from app.services.encoders import iter_encoded
from app.transforms.base import EmbeddingTransform
from app.transforms.loading import load_transform
from app.transforms.whitening import Whitening

if TYPE_CHECKING:
    from app.transforms.flow import FlowTransform

logger = logging.getLogger(__name__)

TRANSFORM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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


def fit_flow(
    encoder: Encoder,
    corpus: Sequence[str],
    output: str | Path,
    *,
    steps: int = 4,
    hidden: int = 256,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | None = None,
    show_progress_bar: bool = False,
) -> FlowTransform:
    """Encode a corpus, train BERT-flow on its vectors (early-stopped) and save it.

    Raises:
        InputValidationError, EmptyInputError: As ``FlowTransform``.
    """
    from app.transforms.flow import FlowTransform  # torch: imported only when used

    vectors = list(iter_encoded(encoder, corpus, show_progress_bar=show_progress_bar))
    flow = FlowTransform(
        steps=steps,
        hidden=hidden,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        model=encoder.model_name,
        pooling=encoder.pooling,
        show_progress_bar=show_progress_bar,
    ).fit(vectors)
    flow.save(output)
    return flow


@dataclass(frozen=True)
class WhiteningConfig:
    """Knobs of a collection's whitening (DESIGN.md §2): k, beta, gamma."""

    n_components: int | None = None
    beta: float = 1.0
    gamma: float = 1.0


def refit_whitening(collection: VectorCollection, config: WhiteningConfig) -> None:
    """Fit BERT-whitening on a collection's stored raw vectors and switch it to it; the
    collection saves it and re-indexes crash-safely (``VectorCollection.retransform``): on any
    failure the previous whitening stays in force.

    Raises:
        EmptyInputError: The collection has no documents.
        NotFoundError: It was deleted meanwhile.
        StorageError: The whitening or the collection could not be written.
    """
    with collection.exclusive(f"refitting the whitening of {collection.name!r}", write=True):
        if collection.count() == 0:
            raise EmptyInputError(
                f"collection {collection.name!r} has no documents to fit whitening on"
            )
        whitening = Whitening(
            config.n_components,
            beta=config.beta,
            gamma=config.gamma,
            model=collection.meta["model"],
            pooling=collection.meta["pooling"],
        ).fit(collection.iter_raw_vectors())
        collection.retransform(whitening, {"whitening": asdict(config)})


class TransformRegistry:
    """Fitted transforms saved under the models folder, loaded on first use and kept.

    A transform is only loaded for the encoder it was fitted for (model, pooling, d).

    Args:
        models_dir: The folder holding one subfolder per transform.
        encoder: The encoder in use (its model, pooling and d are checked).
    """

    def __init__(self, models_dir: Path, encoder: Encoder) -> None:
        self.models_dir = models_dir
        self.encoder = encoder
        self._cache: dict[str, EmbeddingTransform] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> EmbeddingTransform:
        """The transform (whitening or flow) saved as ``models_dir/name``.

        Raises:
            InputValidationError: The name is not a plain folder name.
            NotFoundError: No such transform.
            TransformMismatchError: It was fitted for another encoder.
        """
        if not TRANSFORM_NAME.fullmatch(name):
            raise InputValidationError(
                f"transform name {name!r} must be a folder name under models/"
            )
        with self._lock:
            if name not in self._cache:
                folder = self.models_dir / name
                if not folder.is_dir():
                    raise NotFoundError(
                        f"no transform {name!r} in the models folder (SENTSIM_MODELS_DIR); fit "
                        f"one with sentsim fit-whitening --output <models folder>/{name}"
                    )
                try:
                    self._cache[name] = load_transform(
                        folder,
                        model=self.encoder.model_name,
                        pooling=self.encoder.pooling,
                        dimension=self.encoder.dimension,
                    )
                except ServiceError as exc:  # the same error, naming the folder by its name
                    raise type(exc)(str(exc).replace(str(folder), f"transform {name!r}")) from None
                except Exception as exc:  # a damaged file: the log has the details
                    logger.error("transform %s could not be loaded", name, exc_info=exc)
                    raise ModelLoadError(
                        f"transform {name!r} could not be loaded ({type(exc).__name__}); "
                        "the server log has the details: fit it again"
                    ) from None
            return self._cache[name]


def _label(model: object) -> str:
    """A model's name for messages: a local checkpoint by its folder name, not its path."""
    return Path(model).name if isinstance(model, str) and os.path.isabs(model) else str(model)


def resolve_collection_transform(
    meta: Mapping[str, Any],
    encoder: tuple[str, str, int],
    registry: TransformRegistry | None,
) -> EmbeddingTransform | None:
    """The named transform a collection uses (``None`` if it uses none), after checking that
    the server's encoder is the one the collection was built with.

    Args:
        meta: The collection's metadata (``model``, ``pooling``, ``dimension``,
            ``transform_name``).
        encoder: The server's (model name, pooling, d).
        registry: The named transforms, ``None`` without a models folder.

    Raises:
        ConflictError: Another encoder, or the named transform is missing or unfit.
        NotFoundError: It uses a named transform and there is no models folder.
    """
    built = (meta.get("model"), meta.get("pooling"), meta.get("dimension"))
    if built != encoder:
        raise ConflictError(
            f"it was built with model {_label(built[0])!r}, pooling {built[1]!r}, "
            f"d={built[2]}; the server runs {_label(encoder[0])!r}, {encoder[1]!r}, "
            f"d={encoder[2]}"
        )
    if not meta.get("transform_name"):
        return None
    if registry is None:
        raise NotFoundError("it uses a named transform and there is no models folder")
    try:
        return registry.get(meta["transform_name"])
    except ServiceError as exc:
        raise ConflictError(f"its transform {meta['transform_name']!r}: {exc}") from None
