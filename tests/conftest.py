"""Shared fixtures: a tiny random BERT checkpoint written once per session, and data paths."""

from __future__ import annotations

import os

# No test may reach the Hugging Face Hub; set before transformers is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import importlib.util
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from app.encoding.bert import BertEncoder


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker is a process of its own: one torch thread each, so that
    the workers (one per core) do not oversubscribe the cores with torch's thread pools."""
    del config
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow modules first (a stable sort): pytest-xdist then hands the longest work out
    first, and the run does not end waiting on one worker's late integration test."""
    items.sort(
        key=lambda item: (
            "/integration/" not in item.nodeid and not item.nodeid.startswith("integration/"),
            item.get_closest_marker("slow") is None,
        )
    )


DATA_DIR = Path(__file__).parent / "data"
STS_SAMPLE = DATA_DIR / "stsb_test_300.tsv"

_WORDS = (
    "a an the man woman dog cat child boy girl is are was plays playing guitar piano eats "
    "eating food slices tomato tomatoes rides riding horse bike runs running on in at with "
    "of and to street park beach water ball red blue green small big two three people "
    "sits sitting talks phone car drives road tree house dance dances sings song"
).split()


def write_tiny_bert(folder: Path, *, hidden_size: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a random ``BertModel`` (hidden 32, 2 layers) and a WordPiece tokenizer whose vocab
    is generated from a small word list, single letters and ``##`` suffix pieces."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?", "'", "-"]
    vocab += letters + [f"##{c}" for c in letters] + _WORDS + [f"##{w}" for w in ("s", "ing")]
    folder.mkdir(parents=True, exist_ok=True)
    ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    tokenizer = BertTokenizerFast(vocab=ids, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    BertModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT checkpoint (safetensors), written once per session."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_encoder(tiny_bert_dir: Path) -> BertEncoder:
    """A ``BertEncoder`` over the tiny checkpoint, mean pooling, on the CPU."""
    from app.encoding.bert import BertEncoder

    return BertEncoder(str(tiny_bert_dir), pooling="mean", device="cpu", batch_size=4)


@pytest.fixture(scope="session")
def sentences() -> list[str]:
    """Sentences of very different lengths, so length sorting reorders them."""
    return [
        "a man plays a guitar",
        "the dog",
        "two people are sitting in the park with a big red ball and a small blue car",
        "",
        "a woman slices tomatoes",
        "children running on the beach",
        "the cat eats",
        "a boy rides a horse on the street at the beach with three dogs",
        "zzzz qqqq",
    ]


QUORA = Path(__file__).resolve().parents[2] / "shared" / "data" / "quora-para" / "train.tsv"


@pytest.fixture(scope="session")
def tiny_simbert(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny BERT trained the SimBERT way on 200 quora-para pairs (300 steps, seeded):
    ``(checkpoint folder, TrainReport, pairs)``. Trained once for the whole run: under
    pytest-xdist the first worker trains it into the run's shared temporary folder (a file
    lock) and the others load that (the same seeded result, ~25 s of CPU each saved)."""
    import json

    from filelock import FileLock

    from app.core.datasets import read_pairs
    from app.training.simbert import TrainConfig, TrainReport, train_simbert

    if not QUORA.is_file():
        pytest.skip("needs ../shared/data/quora-para/train.tsv")
    pairs = read_pairs(QUORA)[:200]
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    out = shared / "tiny-simbert"
    with FileLock(str(shared / "tiny-simbert.lock")):
        if not (out / "training.json").is_file():
            config = TrainConfig(
                batch_size=16,
                max_steps=300,
                lr=2e-3,
                warmup_steps=20,
                checkpoint_every=100,
                max_length=32,
            )
            # Each worker writes the tiny BERT with the same seed: whichever trains, the same.
            train_simbert(pairs, str(tiny_bert_dir), out, config, device="cpu")
    report = TrainReport(**json.loads((out / "training.json").read_text("utf-8"))["report"])
    return out, report, pairs


def start_milvus_lite(data: Path, port: int) -> subprocess.Popen[bytes]:
    """``milvus-lite server`` (Milvus Lite's gRPC server) on loopback, answering when returned."""
    from pymilvus import MilvusClient

    server = Path(sys.executable).parent / "milvus-lite"
    process = subprocess.Popen(
        [str(server), "server", "--data-dir", str(data), "--host", "127.0.0.1"]
        + ["--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "milvus-lite server exited"
        try:
            MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=2).list_collections()
            return process
        except Exception:  # noqa: BLE001 - not listening yet
            assert time.monotonic() < deadline, "milvus-lite server did not start"
            time.sleep(0.2)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Milvus Lite server for the session (per xdist worker): its base URL."""
    if importlib.util.find_spec("pymilvus") is None:
        pytest.skip("the milvus extra is not installed")
    from tests.integration.server import free_port

    port = free_port()
    process = start_milvus_lite(tmp_path_factory.mktemp("milvus-server"), port)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(30)


@pytest.fixture
def milvus_uri(milvus_server: str) -> Iterator[str]:
    """A fresh database of the session's Milvus server, as a URI (``http://host:port/db``):
    each test sees only its own collections, registry included; dropped afterwards."""
    from pymilvus import MilvusClient

    name = f"t{uuid.uuid4().hex[:16]}"
    MilvusClient(uri=milvus_server).create_database(name)
    yield f"{milvus_server}/{name}"
    client = MilvusClient(uri=f"{milvus_server}/{name}")
    for collection in client.list_collections():
        client.drop_collection(collection)
    client.drop_database(name)
    client.close()
