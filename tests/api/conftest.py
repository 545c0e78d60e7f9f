"""API fixtures: settings over the tiny BERT in temporary folders, and a TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
def settings(tmp_path: Path, tiny_bert_dir: Path) -> Settings:
    return Settings(
        model=str(tiny_bert_dir),
        device="cpu",
        precision="fp32",  # the in-process references (tiny_encoder) are fp32
        models_dir=tmp_path / "models",
        indexes_dir=tmp_path / "indexes",
        max_client_batch_size=8,
        max_upsert_documents=20,
        max_top_k=10,
        max_sentence_chars=200,
        max_request_bytes=64 * 1024,
        max_wait_ms=1,
        allowed_hosts=["testserver"],  # TestClient's Host
        generator="none",  # not the shipped one: tests/api/routes/test_paraphrase.py trains its own
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
