"""Services: everything the API needs, built once from settings (an edge that reads them)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from app import __version__
from app.core.config import Settings
from app.core.errors import ModelLoadError
from app.encoding.base import Encoded, Encoder
from app.index.base import CollectionCatalog
from app.index.catalog import FolderCatalog
from app.services.batching import MicroBatcher, model_thread
from app.services.clustering import ClusterService
from app.services.collections import CollectionService
from app.services.drift import DriftService
from app.services.embeddings import EmbeddingService
from app.services.encoders import EncoderOptions, load_encoder
from app.services.inference import InferenceGateway
from app.services.limits import Limits
from app.services.metrics import Metrics
from app.services.paraphrase import ParaphraseService
from app.services.search import SearchService
from app.services.transforms import TransformRegistry
from app.services.transport import TokenCache

if TYPE_CHECKING:
    from app.generation.sampling import SimBertGenerator

logger = logging.getLogger(__name__)

D = TypeVar("D")


def _load_generator(setting: str | None, device: str | None) -> SimBertGenerator | None:
    """The SimBERT generator a setting names (``generator_path``; torch loads here)."""
    from app.encoding.registry import generator_path
    from app.generation.sampling import SimBertGenerator

    path = generator_path(setting)
    return None if path is None else SimBertGenerator.load(path, device=device)


def _catalog(settings: Settings) -> CollectionCatalog:
    """Where the collections are kept (``vector_backend``).

    Raises:
        ModelLoadError: ``milvus`` without the ``milvus`` extra installed.
    """
    if settings.vector_backend == "faiss":
        return FolderCatalog(settings.indexes_dir)
    try:
        from app.index.milvus_catalog import MilvusCatalog
    except ImportError:
        raise ModelLoadError(
            "SENTSIM_VECTOR_BACKEND=milvus needs pymilvus: pip install 'sentsim[milvus]'"
        ) from None
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    return MilvusCatalog(settings.milvus_uri, token)


def _from_settings(cls: type[D], settings: Settings) -> D:
    """A dataclass whose fields are all settings of the same names (server values: offline
    commands build ``EncoderOptions`` from their own flags)."""
    return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})  # type: ignore[arg-type]


@dataclass
class Services:
    """The loaded model and the services over it.

    Attributes:
        settings: The settings it was built from.
        inference: The one way to the model (batcher, identity, truncation policy).
        embeddings: Embeddings and similarity.
        collections: Persistent collections.
        search: Semantic search over them, with optional WMD / WRD reranking.
        drift: Gaussian distances between collections, and of queries from documents.
        clustering: Clusters and duplicate pairs of a collection's documents.
        paraphrase: SimBERT paraphrases (503 without a generator).
        metrics: Prometheus metrics.
        limits: Request limits.
    """

    settings: Settings
    inference: InferenceGateway
    embeddings: EmbeddingService
    collections: CollectionService
    search: SearchService
    drift: DriftService
    clustering: ClusterService
    metrics: Metrics
    limits: Limits
    paraphrase: ParaphraseService
    started: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Load the encoder and wire the services (the model load takes seconds).

        Raises:
            ModelLoadError, ModelIntegrityError, InputValidationError: From the encoder.
        """
        # The model is loaded on the thread that will run it (see app.services.batching).
        thread = model_thread()
        options = _from_settings(EncoderOptions, settings)
        try:
            encoder = thread.submit(load_encoder, options).result()
        except BaseException:
            thread.shutdown()
            raise
        metrics = Metrics()
        limits = _from_settings(Limits, settings)
        batcher = MicroBatcher(
            encoder.encode_with_lengths,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue_size=settings.max_queue_size,
            metrics=metrics,
            executor=thread,
        )
        inference = InferenceGateway(encoder, batcher)
        transforms = TransformRegistry(settings.models_dir, encoder)
        embeddings = EmbeddingService(inference, limits, transforms, settings.served_model_names)
        collections = CollectionService(_catalog(settings), inference, limits, transforms)
        drift = DriftService(
            collections,
            settings.drift_window,
            metrics,
            whitening_threshold=settings.whitening_drift_threshold,
            whitening_refresh_s=settings.whitening_drift_refresh_s,
        )
        return cls(
            settings=settings,
            inference=inference,
            embeddings=embeddings,
            collections=collections,
            search=SearchService(
                collections,
                inference,
                limits,
                token_cache=TokenCache(int(settings.token_cache_mb * 2**20)),
                on_queries=drift.record,
            ),
            drift=drift,
            clustering=ClusterService(collections),
            metrics=metrics,
            limits=limits,
            paraphrase=ParaphraseService(
                _load_generator(settings.generator, settings.device),
                settings.max_concurrent_generations,
            ),
        )

    @property
    def encoder(self) -> Encoder:
        """The loaded encoder (the gateway's)."""
        return self.inference.encoder

    @property
    def batcher(self) -> MicroBatcher[Encoded]:
        """Dynamic batching in front of the encoder (the gateway's)."""
        return self.inference.batcher

    async def start(self) -> None:
        """Start the batcher, warm the model up, open and reconcile the collections."""
        self.batcher.start()
        await self.batcher.encode(["warm-up sentence"])
        await asyncio.to_thread(self.collections.open_all)
        self.started = True
        logger.info(
            "sentsim ready: model %s, precision %s (%s)",
            self.encoder.model_name,
            self.encoder.precision,
            self.encoder.precision_reason,
        )

    async def stop(self) -> None:
        """Drain the batcher and checkpoint the indexes."""
        self.started = False
        await self.batcher.stop()
        await asyncio.to_thread(self.collections.close)

    def health(self) -> dict[str, Any]:
        """Component status: ``{"status", "model", "store", "reasons"}``.

        ``status`` is ``ok``; ``degraded`` when the model serves but collections are read-only
        or unavailable or a write failed (``reasons`` says which); ``unavailable`` before
        start-up or after shutdown.
        """
        model = "loaded" if self.batcher.running else "not loaded"
        if not self.started:
            return {"status": "unavailable", "model": model, "store": "closed", "reasons": []}
        reasons = self.collections.health()
        store = "read-only" if self.collections.read_only is not None else "open"
        status = "ok" if model == "loaded" and not reasons else "degraded"
        if model != "loaded":
            status = "unavailable"
        return {"status": status, "model": model, "store": store, "reasons": reasons}

    def info(self) -> dict[str, Any]:
        """What the server runs: model, pooling, dimension, precision, limits, version."""
        return {
            "model": self.encoder.model_name,
            "pooling": self.encoder.pooling,
            "dimension": self.encoder.dimension,
            "precision": self.encoder.precision,
            "precision_reason": self.encoder.precision_reason,
            "max_seq_length": self.encoder.max_seq_length,
            "transform": "none (named transforms from models/ per request)",
            "collections": len(self.collections.list_collections()),
            "limits": {
                "max_client_batch_size": self.limits.max_client_batch_size,
                "max_sentence_chars": self.limits.max_sentence_chars,
                "max_top_k": self.limits.max_top_k,
                "max_upsert_documents": self.limits.max_upsert_documents,
                "max_batch_size": self.batcher.max_batch_size,
                "max_rerank_candidates": self.limits.max_rerank_candidates,
                "max_request_bytes": self.settings.max_request_bytes,
                "max_metadata_bytes": self.limits.max_metadata_bytes,
                "max_metadata_depth": self.limits.max_metadata_depth,
                "max_filter_keys": self.limits.max_filter_keys,
                "max_response_bytes": self.limits.max_response_bytes,
            },
            "generator": self.paraphrase.model_name,
            "version": __version__,
        }
