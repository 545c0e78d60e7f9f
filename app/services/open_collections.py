"""The collections a service holds open: opening them (or listing one as unavailable, with the
reason), refreshing them from a shared catalog that other replicas write, closing them, and the
health of their storage (read-only storage, failed writes). ``CollectionService`` builds on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from app.core.errors import (
    NotFoundError,
    NotReadyError,
    ReadOnlyError,
    ServiceError,
    StorageError,
    storage_error,
)
from app.index.base import CollectionCatalog, VectorCollection
from app.services.inference import InferenceGateway
from app.services.limits import Limits
from app.services.transforms import TransformRegistry, resolve_collection_transform
from app.transforms.base import EmbeddingTransform

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _reason(exc: BaseException) -> str:
    """Why a collection could not be opened, without file paths or library internals."""
    if isinstance(exc, ServiceError):
        return str(exc)
    if isinstance(exc, OSError) or type(exc).__module__ == "sqlite3":
        return str(storage_error("opening it", exc))
    return f"it could not be opened ({type(exc).__name__}); the server log has the details"


class OpenCollections:
    """The open collections of one catalog (see the module's note); ``CollectionService`` adds
    what can be done with them. Arguments as ``CollectionService``'s.
    """

    def __init__(
        self,
        catalog: CollectionCatalog,
        inference: InferenceGateway,
        limits: Limits,
        transforms: TransformRegistry | None = None,
    ) -> None:
        self.catalog = catalog
        self.inference = inference
        self.limits = limits
        self.transforms = transforms
        #: The last failed write's error, until a write succeeds again.
        self.fault: str | None = None
        self._collections: dict[str, VectorCollection] = {}
        self._unavailable: dict[str, str] = {}
        #: The catalog's revision of each name as opened (shared catalogs are checked on use).
        self._revisions: dict[str, str] = {}
        self._lock = threading.RLock()

    @property
    def read_only(self) -> str | None:
        """Why the collections cannot be written (``None``: they can)."""
        return self.catalog.read_only

    # --- lifecycle ----------------------------------------------------------------------

    def open_all(self) -> None:
        """Open (and reconcile) every collection; one that fails is listed as unavailable
        with the reason, and the others open regardless. Storage that cannot be written opens
        them all read-only."""
        self.catalog.start()
        if self.read_only is not None:
            logger.warning("collections are read-only: %s", self.read_only)
        for name in self.catalog.names():
            self._load(name)

    def _load(self, name: str, revision: str | None = None) -> None:
        """Open ``name`` into the cache, or list it as unavailable with the reason."""
        with self._lock:
            try:
                collection = self.catalog.open(name, self._resolve)
            except Exception as exc:  # noqa: BLE001 - one collection never stops the rest
                logger.warning("collection %s is unavailable", name, exc_info=exc)
                self._collections.pop(name, None)
                self._unavailable[name] = _reason(exc)
            else:
                self._collections[name] = collection
                self._unavailable.pop(name, None)
            self._revisions[name] = revision or self.catalog.revision(name) or ""

    def _refresh(self, name: str) -> None:
        """For a shared catalog (other replicas write it): bring ``name``'s cache in line with
        the stored state: gone, re-created or refitted elsewhere is seen at once (one registry
        read per access). A replaced instance is not closed: requests still using it finish,
        or fail with ``ConflictError`` if the replica that changed it dropped its data."""
        revision = self.catalog.revision(name)
        with self._lock:
            if revision is None:
                gone = self._collections.pop(name, None)
                if gone is not None:
                    gone.close()
                self._unavailable.pop(name, None)
                self._revisions.pop(name, None)
            elif self._revisions.get(name) != revision:
                self._load(name, revision)

    def _resolve(self, meta: Mapping[str, Any]) -> EmbeddingTransform | None:
        """``ResolveTransform``: ``resolve_collection_transform`` for this server's encoder."""
        encoder = (self.inference.model_name, self.inference.pooling, self.inference.dimension)
        return resolve_collection_transform(meta, encoder, self.transforms)

    def close(self) -> None:
        """Checkpoint every index and close the collections and the catalog."""
        with self._lock:
            for collection in self._collections.values():
                collection.close()
            self._collections.clear()
            self.catalog.close()

    def health(self) -> list[str]:
        """Why the collections are degraded: read-only storage, unavailable collections, failed
        writes, index files that could not be saved. Empty when all is well."""
        reasons = [] if self.read_only is None else [f"read-only: {self.read_only}"]
        unavailable = list(self._unavailable.items())  # a copy: deletes may run meanwhile
        reasons += [f"collection {n!r} unavailable: {r}" for n, r in unavailable]
        if self.fault is not None:
            reasons.append(f"last write failed: {self.fault}")
        faults = [getattr(c, "fault", None) for c in list(self._collections.values())]
        reasons += [f for f in faults if f is not None]
        return reasons

    def _writing(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a write; a ``StorageError`` marks the service degraded, a success clears it."""
        try:
            result = fn(*args)
        except StorageError as exc:
            if self.read_only is None:  # read-only since start-up is in health already
                self.fault = str(exc)
            raise
        self.fault = None
        return result

    def _check_writable(self, what: str) -> None:
        if self.read_only is not None:
            raise ReadOnlyError(f"{what} refused: {self.read_only}")

    def get(self, name: str) -> VectorCollection:
        """The open collection of this name (for a shared catalog, as stored now).

        Raises:
            NotFoundError: No such collection.
            NotReadyError: It could not be opened (the message says why).
            StorageError: A shared catalog could not be read.
        """
        if self.catalog.shared:
            self._writing(self._refresh, name)
        collection = self._collections.get(name)
        if collection is None:
            if name in self._unavailable:
                raise NotReadyError(
                    f"collection {name!r} is unavailable: {self._unavailable[name]}. "
                    "Fix the cause and restart, or delete the collection"
                )
            raise NotFoundError(f"no collection named {name!r}; create it with POST /collections")
        return collection
