"""Collections: named sets of documents searchable by meaning, that survive restarts.

One collection is a ``VectorCollection`` (``app.index``: SQLite + FAISS in a folder, or Milvus),
kept by a ``CollectionCatalog``; this service holds the open ones (or lists one as unavailable,
with the reason, when it cannot be opened), checks the encoder behind them, resolves their named
transforms from the models folder and applies the limits of documents. With a shared catalog
(a Milvus server that other replicas write) it checks the stored state on every access. Searching
is ``app.services.search``.

Storage faults: a failed write raises ``StorageError`` and marks the service degraded (see
``health``) until a later write succeeds; storage that cannot be written at start-up opens every
collection read-only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from app.core.errors import (
    BatchTooLargeError,
    ConflictError,
    EmptyInputError,
    InputValidationError,
    NotFoundError,
)
from app.index.base import VectorCollection
from app.index.faiss_index import SPEC_BOUNDS as SPEC_BOUNDS  # re-exported for the API
from app.index.faiss_index import SPEC_GRAMMAR as SPEC_GRAMMAR
from app.index.faiss_index import SPEC_PATTERN as SPEC_PATTERN
from app.index.faiss_index import parse_spec
from app.index.store import Document as Document
from app.services.identifiers import check_collection_name, check_document_id
from app.services.open_collections import OpenCollections
from app.services.transforms import (
    WhiteningConfig,
    refit_whitening,
)


@dataclass(frozen=True)
class Upserted:
    """What an upsert stored.

    Attributes:
        ids: The documents' ids, in request order.
        truncated: Ids of documents whose vectors come from a truncated text.
    """

    ids: list[str]
    truncated: list[str]


class CollectionService(OpenCollections):
    """All collections of one backend, sharing one encoder through the micro-batcher.
    (Searching them is ``app.services.search.SearchService``.)

    Args:
        catalog: Where the collections are kept (``FolderCatalog``: the ``faiss`` backend;
            ``MilvusCatalog``: the ``milvus`` one).
        inference: Encodes documents (with the truncation policy); its model's name, pooling
            and d are recorded with each collection.
        limits: Request limits.
        transforms: Named transforms under the models folder, for collections that use one.
    """

    # --- collections --------------------------------------------------------------------

    def create(
        self,
        name: str,
        index: str = "flat",
        whitening: WhiteningConfig | None = None,
        transform: str | None = None,
    ) -> dict[str, Any]:
        """Create an empty collection, optionally with a named transform from the models folder.

        Raises:
            InputValidationError: Bad name or index spec, or both whitening and a transform.
            NotFoundError, TransformMismatchError: The named transform is missing or unfit.
            ConflictError: The name is taken.
            StorageError: The storage could not be written (nothing is left behind).
        """
        check_collection_name(name)
        d = self.inference.dimension
        fitted = None
        if transform is not None:
            if whitening is not None:
                raise InputValidationError("give whitening knobs or a named transform, not both")
            if self.transforms is None:
                raise NotFoundError("this service has no models folder for named transforms")
            fitted = self.transforms.get(transform)
        parse_spec(index, fitted.n_components if fitted else d)
        if whitening and whitening.n_components and whitening.n_components > d:
            raise InputValidationError(
                f"whitening k={whitening.n_components} exceeds the model's dimension d={d}"
            )
        self._check_writable(f"creating collection {name!r}")
        meta = {
            "name": name,
            "index": index,
            "whitening": None if whitening is None else asdict(whitening),
            "model": self.inference.model_name,
            "pooling": self.inference.pooling,
            "dimension": d,
            "transform_name": transform,
        }
        with self._lock:
            if name in self._collections or name in self._unavailable:
                raise ConflictError(f"collection {name!r} already exists")
            collection = self._writing(self.catalog.create, meta, fitted)
            self._collections[name] = collection
            self._revisions[name] = self.catalog.revision(name) or ""
        return self._info(collection)

    def list_collections(self) -> list[dict[str, Any]]:
        """Every collection's info, by name; unavailable ones with their reason."""
        if self.catalog.shared:
            for name in set(self.catalog.names()) | set(self._revisions):
                self._writing(self._refresh, name)
        infos = []
        for collection in list(self._collections.values()):
            try:
                infos.append(self._info(collection))
            except NotFoundError:  # deleted while listing
                continue
        infos += [self._unavailable_info(n, r) for n, r in list(self._unavailable.items())]
        return sorted(infos, key=lambda info: str(info["name"]))

    def info(self, name: str) -> dict[str, Any]:
        """One collection's info (an unavailable one's status and reason). Raises
        ``NotFoundError``."""
        collection = self.get(name) if name not in self._unavailable else None
        if collection is None:  # still unavailable after a shared catalog's refresh
            return self._unavailable_info(name, self._unavailable[name])
        return self._info(collection)

    @staticmethod
    def _unavailable_info(name: str, reason: str) -> dict[str, Any]:
        return {"name": name, "status": "unavailable", "reason": reason}

    def _info(self, collection: VectorCollection) -> dict[str, Any]:
        """``{"name", "status", "count", "dimension", "index", "transform"}`` (the wire shape)."""
        transform: dict[str, Any] | str = "none"
        if collection.transform is not None:
            meta = collection.transform.metadata  # type: ignore[attr-defined]  # ours have it
            keys = ("type", "n_components", "beta", "gamma", "steps", "n_fitted")
            transform = {k: meta[k] for k in keys if k in meta}
            if collection.meta.get("transform_name"):
                transform["name"] = collection.meta["transform_name"]
        return {
            "name": collection.name,
            "status": "ready" if collection.writable else "read_only",
            "count": collection.count(),
            "dimension": collection.vector_dimension,
            "index": collection.meta["index"],
            "transform": transform,
        }

    def delete(self, name: str) -> None:
        """Delete a collection and its data, all or nothing: a failure leaves it usable.

        Raises:
            NotFoundError: No such collection.
            StorageError: It could not be removed (the collection is unchanged).
        """
        self._check_writable(f"deleting collection {name!r}")
        with self._lock:
            if name in self._unavailable:
                self._writing(self.catalog.remove, name)
                del self._unavailable[name]
            else:
                self._writing(self.get(name).destroy)
                del self._collections[name]
            self._revisions.pop(name, None)

    # --- documents ----------------------------------------------------------------------

    async def upsert(
        self, name: str, documents: Sequence[Document], *, truncate: bool = False
    ) -> Upserted:
        """Encode and store documents (an existing id is replaced).

        Args:
            name: The collection.
            documents: The documents (an empty id gets a new one).
            truncate: Store a text over the model's limit with the vector of its beginning
                (the stored text stays whole); off, such a text is refused. Never silent: the
                result names the documents cut.

        Returns:
            The ids in request order, and those whose vectors come from a truncated text.

        Raises:
            NotFoundError, BatchTooLargeError, EmptyInputError, InputValidationError.
            StorageError: Nothing was stored.
        """
        collection = self.get(name)
        if len(documents) > self.limits.max_upsert_documents:
            raise BatchTooLargeError(
                f"{len(documents)} documents in one upsert; the limit is "
                f"{self.limits.max_upsert_documents} (SENTSIM_MAX_UPSERT_DOCUMENTS)"
            )
        if not documents:
            raise EmptyInputError("no documents given")
        for i, doc in enumerate(documents):
            self.limits.check_text(doc.text, f"documents[{i}].text")
            self.limits.check_metadata(doc.metadata, f"documents[{i}].metadata")
            if doc.id:
                check_document_id(doc.id, f"documents[{i}].id")
        self._check_writable(f"storing documents in collection {name!r}")  # before encoding
        docs = [d if d.id else Document(uuid.uuid4().hex, d.text, d.metadata) for d in documents]
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            raise InputValidationError("document ids repeat within the request")
        inferred = await self.inference.embed_pooled(
            [d.text for d in docs], truncate=truncate, what="documents"
        )
        vectors = inferred.embeddings
        stored = await asyncio.to_thread(self._writing, collection.upsert, docs, vectors)
        return Upserted(stored, [stored[i] for i in inferred.truncated])

    def get_document(self, name: str, doc_id: str) -> Document:
        """A stored document. Raises ``NotFoundError``."""
        doc = self.get(name).get(doc_id)
        if doc is None:
            raise NotFoundError(f"collection {name!r} has no document {doc_id!r}")
        return doc

    def delete_document(self, name: str, doc_id: str) -> None:
        """Delete a document. Raises ``NotFoundError``, ``StorageError``."""
        collection = self.get(name)
        self._writing(collection.delete, doc_id)

    # --- whitening ----------------------------------------------------------------------

    async def refit_whitening(
        self,
        name: str,
        *,
        n_components: int | None = None,
        beta: float | None = None,
        gamma: float | None = None,
    ) -> dict[str, Any]:
        """(Re)fit a collection's whitening on its documents and rebuild its index.

        Each knob left ``None`` keeps the collection's stored one (standard whitening, all d
        components, if it has none). A failure leaves the previous whitening in force.

        Raises:
            NotFoundError, EmptyInputError, InputValidationError, ConflictError.
            StorageError: The whitening or the store could not be written.
        """
        collection = self.get(name)
        if collection.meta.get("transform_name"):
            raise ConflictError(
                f"collection {name!r} uses the named transform "
                f"{collection.meta['transform_name']!r}; create one without it to fit its own "
                "whitening"
            )
        stored = WhiteningConfig(**(collection.meta.get("whitening") or {}))
        config = WhiteningConfig(
            n_components=n_components if n_components is not None else stored.n_components,
            beta=beta if beta is not None else stored.beta,
            gamma=gamma if gamma is not None else stored.gamma,
        )
        if config.n_components and config.n_components > self.inference.dimension:
            raise InputValidationError(
                f"whitening k={config.n_components} exceeds d={self.inference.dimension}"
            )
        await asyncio.to_thread(self._writing, refit_whitening, collection, config)
        return self._info(collection)
