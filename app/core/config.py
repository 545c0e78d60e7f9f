"""Settings: read from the environment (prefix ``SENTSIM_``) and ``.env``, at the edges only.

Precedence: a CLI flag overrides the environment, which overrides ``.env``, which overrides the
defaults below. The ML classes never read settings; ``app/cli.py`` (and later ``app/main.py``)
pass the values on as constructor arguments.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Pooling = Literal["cls", "mean", "first_last_avg", "last2avg"]
Precision = Literal["auto", "fp32", "bf16", "int8"]


class Settings(BaseSettings):
    """Configuration of the encoder and the data folders.

    Attributes:
        model: Model name: ``all-MiniLM-L6-v2`` (bundled, verified by SHA-256), a Hugging Face
            Hub id, or a local checkpoint directory.
        pooling: How token vectors become one sentence vector (DESIGN.md §1).
        precision: ``auto`` (bf16 where the device has native bf16 and the model's vectors stay
            within cosine 0.999 of fp32, else fp32), ``fp32``, ``bf16`` or ``int8`` (dynamic
            quantization, CPU only).
        max_seq_length: Truncation length in tokens; ``None`` takes the checkpoint's own.
        batch_size: Sentences per model call.
        num_threads: CPU threads for torch; ``None`` keeps torch's default.
        device: ``cpu``, ``cuda``, ``cuda:1``...; ``None`` picks a GPU when one is present.
        allow_pickle: Also load pickle-based weight files (``pytorch_model.bin``). Off: only
            safetensors weights load, since unpickling can run arbitrary code.
        models_dir: Folder of model artifacts (fitted transforms, named by folder).
        indexes_dir: Folder of persisted collections (SQLite + FAISS), read-write (the
            ``faiss`` backend).
        vector_backend: Where collections are kept: ``faiss`` (SQLite + FAISS under
            ``indexes_dir``, one process) or ``milvus`` (``milvus_uri``; several replicas may
            share a Milvus server). Needs the ``milvus`` extra.
        milvus_uri: A Milvus Lite file (``indexes/milvus.db``: one process) or a Milvus
            server's URL (``http://milvus:19530``).
        milvus_token: The Milvus server's token (``user:password`` or an API key), if any.
        host: Interface ``sentsim serve`` binds to.
        port: TCP port of ``sentsim serve``.
        keep_alive_s: Seconds ``sentsim serve`` keeps an idle HTTP/1.1 connection open. Longer
            than clients keep theirs (httpx 5 s, aiohttp 15 s) and than load balancers' idle
            timeouts (60 s is common), so the client is the one that closes: at an equal
            timeout a request sent just as the server closes fails.
        api_key: When set, every route but ``/health`` requires ``Authorization: Bearer <key>``.
        max_batch_size: Sentences per model call gathered by the micro-batcher.
        max_batch_tokens: Padded tokens (sentences x longest) per model call on the server: a
            gathered batch is sorted by length and cut where it would exceed this (TEI's
            ``max_batch_tokens``).
        pad_to_multiple_of: The server's batch widths are rounded up to a multiple of this many
            tokens, so the model sees fewer distinct shapes (oneDNN caches kernels per shape:
            RSS under load 1.24 GB at 1, 0.90 GB at 8). Offline commands pad to the longest.
        jit: The server runs the model traced with TorchScript (CPU, fp32/bf16; checked
            against eager at load, eager if it disagrees): no Python, so no GIL, between the
            forward pass's operations.
        max_wait_ms: How long the micro-batcher waits for more sentences after the first, in
            milliseconds (0: none; requests that arrive while the model runs are gathered).
        max_queue_size: Requests waiting for the model before new ones are refused with 429.
        max_client_batch_size: Sentences (or queries) in one request (OpenAI's 2,048 by
            default; split into model batches of ``max_batch_size``).
        max_sentence_chars: Characters in one sentence.
        max_top_k: Largest ``top_k`` of a search.
        max_upsert_documents: Documents in one upsert request.
        max_request_bytes: Largest request body, in bytes (larger: 413).
        max_rerank_candidates: Largest ``rerank.candidates`` of a search.
        max_metadata_bytes: A document's metadata as UTF-8 JSON, in bytes.
        max_metadata_depth: How deep a document's metadata may nest (``{"a": 1}``: 1).
        max_filter_keys: Keys in one search ``filter``.
        max_response_bytes: Text and metadata one search may return or rerank, in bytes.
        allowed_hosts: Host names the server answers (``Host`` header; ``*.example.com`` and
            ``*`` allowed); other hosts get 400. ``None``: only loopback names
            (``localhost``, ``127.0.0.1``, ``::1``) when ``host`` is a loopback address — which
            stops DNS-rebinding pages from reaching a local server — and any host otherwise.
        served_model_names: Names the OpenAI routes answer to (``model`` of a request, listed by
            ``GET /v1/models``; the first is reported in responses); ``*`` among them accepts
            any name. ``None``: the model's own name and its aliases
            (``all-MiniLM-L6-v2``, ``sentence-transformers/all-MiniLM-L6-v2``).
        token_cache_mb: Memory for cached document token vectors (reranking), in MiB; 0: none.
        drift_window: Recent queries kept per collection for ``GET /collections/{name}/drift``.
        whitening_drift_threshold: ``GET /collections/{name}`` says a whitened collection's
            documents have drifted when the W2 distance between their Gaussian and the
            whitening's fitting corpus exceeds this fraction of that corpus's spread
            (sqrt of its covariance's trace).
        whitening_drift_refresh_s: Seconds a whitening-drift reading is reused while the
            collection keeps changing (each reading reads every stored vector).
        generator: A SimBERT checkpoint (folder or Hub id) for ``POST /paraphrase``; unset: the
            shipped ``models/simbert-quora``; ``none``: no generator (the route answers 503).
        max_concurrent_generations: Paraphrase requests generating at the same time.
    """

    model_config = SettingsConfigDict(
        env_prefix="SENTSIM_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    model: str = "all-MiniLM-L6-v2"
    pooling: Pooling = "mean"
    precision: Precision = "auto"
    max_seq_length: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1)
    num_threads: int | None = Field(default=None, ge=1)
    device: str | None = None
    allow_pickle: bool = False
    models_dir: Path = Path("models")
    indexes_dir: Path = Path("indexes")
    vector_backend: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str = "indexes/milvus.db"
    milvus_token: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    keep_alive_s: int = Field(default=75, ge=1)
    api_key: SecretStr | None = None
    max_batch_size: int = Field(default=128, ge=1)
    max_batch_tokens: int = Field(default=16384, ge=1)
    pad_to_multiple_of: int = Field(default=8, ge=1)
    jit: bool = True
    max_wait_ms: float = Field(default=0.0, ge=0)
    max_queue_size: int = Field(default=1024, ge=1)
    max_client_batch_size: int = Field(default=2048, ge=1)
    max_sentence_chars: int = Field(default=10_000, ge=1)
    max_top_k: int = Field(default=100, ge=1)
    max_upsert_documents: int = Field(default=1000, ge=1)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_rerank_candidates: int = Field(default=200, ge=1)
    max_metadata_bytes: int = Field(default=16 * 1024, ge=2)
    max_metadata_depth: int = Field(default=8, ge=1)
    max_filter_keys: int = Field(default=32, ge=1)
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    allowed_hosts: Annotated[list[str] | None, NoDecode] = None
    served_model_names: Annotated[list[str] | None, NoDecode] = None

    @field_validator("allowed_hosts", "served_model_names", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``SENTSIM_ALLOWED_HOSTS=a.example,b.example`` (a JSON list works too)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    token_cache_mb: float = Field(default=256.0, ge=0)
    drift_window: int = Field(default=1000, ge=2)
    whitening_drift_threshold: float = Field(default=0.5, gt=0)
    whitening_drift_refresh_s: float = Field(default=60.0, ge=0)
    generator: str | None = None
    max_concurrent_generations: int = Field(default=2, ge=1)

    def trusted_hosts(self) -> list[str]:
        """``allowed_hosts``, or its default for ``host`` (see the class docstring)."""
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        return ["localhost", "127.0.0.1", "[::1]", "::1"] if loopback else ["*"]


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
