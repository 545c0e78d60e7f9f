"""API fixtures: settings over the tiny BERT in temporary folders, and a TestClient."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
def backend() -> str:
    """The vector backend (``faiss``); collection test modules override it with both, as
    ``BACKENDS``."""
    return "faiss"


#: ``@pytest.fixture(params=BACKENDS)``: runs a module's tests on both backends.
BACKENDS = [
    "faiss",
    pytest.param(
        "milvus",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("pymilvus") is None, reason="the milvus extra is not installed"
        ),
    ),
]


@pytest.fixture
def settings(
    tmp_path: Path, tiny_bert_dir: Path, backend: str, request: pytest.FixtureRequest
) -> Settings:
    """Settings over the tiny BERT in temporary folders; the ``milvus`` backend in a fresh
    database of the session's Milvus Lite server."""
    milvus_uri = request.getfixturevalue("milvus_uri") if backend == "milvus" else ""
    return Settings(
        model=str(tiny_bert_dir),
        device="cpu",
        precision="fp32",  # the in-process references (tiny_encoder) are fp32
        jit=False,  # TorchScript has its own tests (tests/unit/encoding/test_bert.py)
        models_dir=tmp_path / "models",
        indexes_dir=tmp_path / "indexes",
        vector_backend=backend,
        milvus_uri=milvus_uri or str(tmp_path / "milvus" / "milvus.db"),
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
