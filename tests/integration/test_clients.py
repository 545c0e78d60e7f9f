"""The client matrix: the real ``sentsim serve`` (default model) driven by clients people
already use, each with its defaults where possible. The settings each needs are the README's.

- ``openai`` (the official SDK): ``base_url``, any ``api_key``; errors show our message.
- LangChain ``OpenAIEmbeddings``: ``check_embedding_ctx_length=False`` (its default
  tokenizes with tiktoken and sends token ids, which are another model's).
- LlamaIndex ``OpenAIEmbedding``: no setting, once the server also answers to its default
  model name (``SENTSIM_SERVED_MODEL_NAMES=all-MiniLM-L6-v2,text-embedding-ada-002``); or
  ``model_name="all-MiniLM-L6-v2"``.
- ``huggingface_hub.InferenceClient(base_url=...)``: no setting (TEI's ``POST /``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from app.encoding.bert import BertEncoder
from tests.integration.server import server

pytestmark = pytest.mark.slow

KEY = "sk-test-key"
NAMES = "all-MiniLM-L6-v2,text-embedding-ada-002"
TEXTS = ["A man is playing a guitar.", "A woman is slicing tomatoes.", "How old are you?"]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"SENTSIM_API_KEY": KEY, "SENTSIM_SERVED_MODEL_NAMES": NAMES, "SENTSIM_GENERATOR": "none"}
    env["SENTSIM_PRECISION"] = "fp32"  # exact reference values whatever the batch
    with server(tmp_path_factory.mktemp("clients"), env=env) as (_, base):
        yield base


@pytest.fixture(scope="module")
def expected() -> np.ndarray:
    """The same sentences through the encoder in-process, unit length (fp32, as the server runs
    here: its vectors do not depend on their batch companions, bf16 ones move by ~1e-3)."""
    vectors = BertEncoder("all-MiniLM-L6-v2", device="cpu", precision="fp32").encode(TEXTS)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_openai_sdk(url: str, expected: np.ndarray) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    response = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS)
    got = np.array([d.embedding for d in response.data])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert response.usage.prompt_tokens > 0
    # The SDK's default encoding_format is base64: decoded, the same vectors.
    assert [m.id for m in client.models.list()] == NAMES.split(",")
    with pytest.raises(openai.NotFoundError, match="not served here; served: all-MiniLM-L6-v2"):
        client.embeddings.create(model="text-embedding-3-large", input="x")
    with pytest.raises(openai.AuthenticationError, match="API key"):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).embeddings.create(
            model="all-MiniLM-L6-v2", input="x"
        )
    long = "word " * 300
    with pytest.raises(openai.APIStatusError, match="truncate=true") as caught:
        client.embeddings.create(model="all-MiniLM-L6-v2", input=long)
    assert caught.value.status_code == 413
    cut = client.embeddings.with_raw_response.create(
        model="all-MiniLM-L6-v2", input=long, extra_body={"truncate": True}
    )
    assert cut.headers["X-Truncated-Inputs"] == "input[0]"


def test_langchain_openai_embeddings(url: str, expected: np.ndarray) -> None:
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model="all-MiniLM-L6-v2",
        base_url=f"{url}/v1",
        api_key=KEY,
        check_embedding_ctx_length=False,
    )
    np.testing.assert_allclose(embeddings.embed_documents(TEXTS), expected, atol=1e-4)
    np.testing.assert_allclose(embeddings.embed_query(TEXTS[0]), expected[0], atol=1e-4)
    # Its default chunk of 1,000 inputs per request (413 before issue 10).
    many = [f"sentence number {i}" for i in range(1000)]
    vectors = np.array(embeddings.embed_documents(many))
    assert vectors.shape == (1000, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_langchain_default_token_ids_get_a_clear_answer(url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError, match="check_embedding_ctx_length=False"):
        client.embeddings.create(model="all-MiniLM-L6-v2", input=[[101, 2023, 102]])


def test_llama_index_openai_embedding_with_its_defaults(url: str, expected: np.ndarray) -> None:
    from llama_index.embeddings.openai import OpenAIEmbedding

    embedding = OpenAIEmbedding(api_base=f"{url}/v1", api_key=KEY, max_retries=0)
    np.testing.assert_allclose(embedding.get_text_embedding_batch(TEXTS), expected, atol=1e-4)
    named = OpenAIEmbedding(
        model_name="all-MiniLM-L6-v2", api_base=f"{url}/v1", api_key=KEY, max_retries=0
    )
    np.testing.assert_allclose(named.get_query_embedding(TEXTS[1]), expected[1], atol=1e-4)


def test_huggingface_hub_inference_client(
    url: str, expected: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import InferenceClient, constants

    # The tests run with HF_HUB_OFFLINE=1, which this client applies to any URL; a user
    # reaching a server of their own has it unset.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    client = InferenceClient(base_url=url, api_key=KEY)
    got = np.asarray(client.feature_extraction(TEXTS[0]))
    np.testing.assert_allclose(got.reshape(-1), expected[0], atol=1e-4)
