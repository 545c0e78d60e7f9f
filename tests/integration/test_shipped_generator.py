"""The paraphrase model shipped in models/simbert-quora: what it is, that it is checked at
load, and that paraphrasing works on a fresh clone with no setting (issue 10 item 2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from safetensors import safe_open

from app.core.config import Settings
from app.core.errors import ModelIntegrityError
from app.encoding.registry import SHIPPED_GENERATOR, generator_path, verify_checksums
from app.main import create_app

pytestmark = pytest.mark.slow

QUESTION = "how can i learn to play the guitar quickly"


def test_the_shipped_model_is_fp16_safetensors_under_60_mb_with_its_record() -> None:
    weights = SHIPPED_GENERATOR / "model.safetensors"
    assert weights.stat().st_size <= 60 * 2**20
    with safe_open(str(weights), "pt") as f:
        dtypes = {str(f.get_slice(name).get_dtype()) for name in f.keys()}  # noqa: SIM118
    assert dtypes == {"F16"}
    assert verify_checksums(SHIPPED_GENERATOR) is True  # every file listed and matching
    listed = (SHIPPED_GENERATOR / "SHA256SUMS").read_text().split()[1::2]
    assert sorted(listed) == sorted(
        p.name for p in SHIPPED_GENERATOR.iterdir() if p.name != "SHA256SUMS"
    )
    assert not list(SHIPPED_GENERATOR.glob("*.bin")) and not list(SHIPPED_GENERATOR.glob("*.pt"))
    record = json.loads((SHIPPED_GENERATOR / "training.json").read_text())
    config, steps = record["config"], record["report"]["steps"]
    assert steps * config["batch_size"] >= record["pairs"] - config["batch_size"]  # one epoch


def test_it_is_the_default() -> None:
    assert generator_path(None) == str(SHIPPED_GENERATOR)
    assert generator_path("None") is None and generator_path("elsewhere") == "elsewhere"


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    copy = shutil.copytree(SHIPPED_GENERATOR, tmp_path / "simbert")
    config = copy / "config.json"
    config.write_text(config.read_text().replace("{", '{"edited": true, ', 1))
    from app.generation.model import SimBertModel

    with pytest.raises(ModelIntegrityError, match="config.json has SHA-256"):
        SimBertModel.load(str(copy))


def test_the_cli_paraphrases_out_of_the_box(tmp_path: Path) -> None:
    """`sentsim paraphrase TEXT`, no --generator, no setting, from the clone's root."""
    script = Path(sys.executable).parent / "sentsim"
    result = subprocess.run(
        [str(script), "paraphrase", QUESTION, "--seed", "0"],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,  # anywhere: the shipped model is found beside the package
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert len(lines) >= 3
    texts = [text for _, text in lines]
    assert QUESTION not in texts and len(set(texts)) == len(texts)
    assert all(0.5 < float(score) <= 1.0 for score, _ in lines)


def test_post_paraphrase_answers_200_with_default_settings(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    settings = Settings(
        jit=False,
        model=str(tiny_bert_dir),
        device="cpu",
        indexes_dir=tmp_path / "indexes",
        models_dir=tmp_path / "models",
        allowed_hosts=["testserver"],
    )
    assert settings.generator is None
    with TestClient(create_app(settings)) as client:
        response = client.post("/paraphrase", json={"text": QUESTION, "top_k": 3, "seed": 0})
        assert response.status_code == 200, response.text
        assert len(response.json()) == 3
        assert client.get("/info").json()["generator"] == "simbert-quora"
