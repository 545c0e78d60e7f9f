"""Collections: named sets of documents searchable by meaning, that survive restarts.

The store+index aggregate of one collection is ``app.index.collection.Collection``; this
service keeps the registry around it: every collection under the indexes folder, opened (or
listed as unavailable, with the reason, when it cannot be), the encoder behind them, their
transforms (a named fitted transform from the models folder, or the collection's own
BERT-whitening in a ``whitening-<id>/`` folder) and the limits of documents. Searching is
``app.services.search``.

Storage faults: a failed write raises ``StorageError`` and marks the service degraded (see
``health``) until a later write succeeds; an indexes folder that cannot be written at start-up
opens every collection read-only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.core.errors import (
    BatchTooLargeError,
    ConflictError,
    EmptyInputError,
    InputValidationError,
    NotFoundError,
    NotReadyError,
    ReadOnlyError,
    ServiceError,
    StorageError,
    storage_error,
)
from app.encoding.base import Encoded
from app.index.collection import STORE_FILE, Collection, empty_trash, move_to_trash, sweep
from app.index.faiss_index import parse_spec
from app.index.store import Document, DocumentStore
from app.services.batching import MicroBatcher
from app.services.limits import Limits
from app.services.transforms import (
    WHITENING_DIR,
    TransformRegistry,
    WhiteningConfig,
    refit_whitening,
)
from app.transforms.base import EmbeddingTransform
from app.transforms.whitening import Whitening

logger = logging.getLogger(__name__)

#: Collection names (full match).
COLLECTION_NAME_PATTERN = r"[a-z0-9_-]{1,64}"
_CHAR, _FIRST = r"[^/\x00-\x1f\x7f]", r"[^/.\x00-\x1f\x7f]"  # no '/' or control; no '.'
_SEGMENT = rf"(?:{_FIRST}{_CHAR}*|\.{_FIRST}{_CHAR}*|\.\.{_CHAR}+)"  # not '', '.' or '..'

#: Document ids: printable text whose '/'-separated parts are neither empty nor '.' / '..'
#: (clients rewrite those in URLs), so that every stored id is reachable at /documents/{id}.
DOCUMENT_ID_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
_NAME = re.compile(COLLECTION_NAME_PATTERN)
_DOCUMENT_ID = re.compile(DOCUMENT_ID_PATTERN)

T = TypeVar("T")


@dataclass(frozen=True)
class EncoderInfo:
    """What a collection's vectors must come from."""

    model: str
    pooling: str
    dimension: int


def _label(model: object) -> str:
    """A model's name for messages: a local checkpoint by its folder name, not its path."""
    return Path(model).name if isinstance(model, str) and os.path.isabs(model) else str(model)


def _reason(exc: BaseException) -> str:
    """Why a collection could not be opened, without file paths or library internals."""
    if isinstance(exc, ServiceError):
        return str(exc)
    if isinstance(exc, OSError) or type(exc).__module__ == "sqlite3":
        return str(storage_error("opening it", exc))
    return f"it could not be opened ({type(exc).__name__}); the server log has the details"


#: ``EmbeddingService.check_lengths``: (token counts, truncate, what) -> indices over the limit.
LengthCheck = Callable[[Sequence[int], bool, str], list[int]]


@dataclass(frozen=True)
class Upserted:
    """What an upsert stored.

    Attributes:
        ids: The documents' ids, in request order.
        truncated: Ids of documents whose vectors come from a truncated text.
    """

    ids: list[str]
    truncated: list[str]


class CollectionService:
    """All collections under one folder, sharing one encoder through the micro-batcher.
    (Searching them is ``app.services.search.SearchService``.)

    Args:
        root: The indexes folder (created if missing).
        batcher: Encodes documents and queries (``Encoded`` rows: vectors and token counts).
        encoder: Model, pooling and d of the encoder behind the batcher.
        limits: Request limits.
        transforms: Named transforms under the models folder, for collections that use one.
        check_length: ``EmbeddingService.check_lengths``: refuses texts over the model's limit
            unless truncation is asked for, and names those cut (``None``: no check).
    """

    def __init__(
        self,
        root: Path,
        batcher: MicroBatcher[Encoded],
        encoder: EncoderInfo,
        limits: Limits,
        transforms: TransformRegistry | None = None,
        check_length: LengthCheck | None = None,
    ) -> None:
        self.root = root
        self.batcher = batcher
        self.encoder = encoder
        self.limits = limits
        self.transforms = transforms
        self.check_length = check_length
        #: Why the indexes folder is read-only (``None``: it is writable).
        self.read_only: str | None = None
        #: The last failed write's error, until a write succeeds again.
        self.fault: str | None = None
        self._collections: dict[str, Collection] = {}
        self._unavailable: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------

    def open_all(self) -> None:
        """Open (and reconcile) every collection; one that fails is listed as unavailable
        with the reason, and the others open regardless. An indexes folder that cannot be
        written opens them all read-only."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            self.read_only = str(storage_error("writing to the indexes folder", exc))
            logger.warning("indexes folder is read-only: %s", self.read_only)
        else:
            sweep(self.root)
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder / STORE_FILE).is_file():
                continue
            try:
                self._collections[folder.name] = self._open(folder)
            except Exception as exc:  # noqa: BLE001 - one collection never stops the rest
                logger.warning("collection %s is unavailable", folder.name, exc_info=exc)
                self._unavailable[folder.name] = _reason(exc)

    def _open(self, folder: Path) -> Collection:
        store = DocumentStore(folder / STORE_FILE, read_only=self.read_only is not None)
        try:
            meta = store.get_meta()
            built = (meta.get("model"), meta.get("pooling"), meta.get("dimension"))
            encoder = (self.encoder.model, self.encoder.pooling, self.encoder.dimension)
            if built != encoder:
                raise ConflictError(
                    f"it was built with model {_label(built[0])!r}, pooling {built[1]!r}, "
                    f"d={built[2]}; the server runs {_label(encoder[0])!r}, {encoder[1]!r}, "
                    f"d={encoder[2]}"
                )
            collection = Collection(
                folder, store, self._load_transform(folder, meta), writable=self.read_only is None
            )
            collection.reconcile()
        except BaseException:
            store.close()
            raise
        if self.read_only is None:
            current = meta.get("whitening_dir")
            for leftover in folder.glob(f"{WHITENING_DIR}*"):
                if leftover.name != current and leftover.is_dir() and current is not None:
                    shutil.rmtree(leftover, ignore_errors=True)
        return collection

    def _load_transform(self, folder: Path, meta: dict[str, Any]) -> EmbeddingTransform | None:
        if meta.get("transform_name"):
            if self.transforms is None:
                raise NotFoundError("it uses a named transform and there is no models folder")
            try:
                return self.transforms.get(meta["transform_name"])
            except ServiceError as exc:
                raise ConflictError(f"its transform {meta['transform_name']!r}: {exc}") from None
        # Collections from before versioned folders kept their whitening in whitening/.
        own = folder / (meta.get("whitening_dir") or WHITENING_DIR)
        if own.is_dir():
            return Whitening.load(own, dimension=self.encoder.dimension)
        return None

    def close(self) -> None:
        """Checkpoint every index and close the stores."""
        with self._lock:
            for collection in self._collections.values():
                collection.close()
            self._collections.clear()

    def health(self) -> list[str]:
        """Why the collections are degraded: read-only folder, unavailable collections, failed
        writes, index files that could not be saved. Empty when all is well."""
        reasons = [] if self.read_only is None else [f"read-only: {self.read_only}"]
        unavailable = list(self._unavailable.items())  # a copy: deletes may run meanwhile
        reasons += [f"collection {n!r} unavailable: {r}" for n, r in unavailable]
        if self.fault is not None:
            reasons.append(f"last write failed: {self.fault}")
        reasons += [c.fault for c in list(self._collections.values()) if c.fault is not None]
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

    # --- collections --------------------------------------------------------------------

    def get(self, name: str) -> Collection:
        """The open collection of this name.

        Raises:
            NotFoundError: No such collection.
            NotReadyError: It could not be opened at start-up (the message says why).
        """
        collection = self._collections.get(name)
        if collection is None:
            if name in self._unavailable:
                raise NotReadyError(
                    f"collection {name!r} is unavailable: {self._unavailable[name]}. "
                    "Fix the cause and restart, or delete the collection"
                )
            raise NotFoundError(f"no collection named {name!r}; create it with POST /collections")
        return collection

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
            StorageError: The folder could not be written (nothing is left behind).
        """
        if not _NAME.fullmatch(name):
            raise InputValidationError(f"collection name {name!r} must match [a-z0-9_-]{{1,64}}")
        d = self.encoder.dimension
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
            "model": self.encoder.model,
            "pooling": self.encoder.pooling,
            "dimension": d,
            "transform_name": transform,
        }
        with self._lock:
            if (
                name in self._collections
                or name in self._unavailable
                or (self.root / name).exists()
            ):
                raise ConflictError(f"collection {name!r} already exists")
            collection = self._writing(Collection.create, self.root, meta, fitted)
            self._collections[name] = collection
        return self._info(collection)

    def list_collections(self) -> list[dict[str, Any]]:
        """Every collection's info, by name; unavailable ones with their reason."""
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
        if name in self._unavailable:
            return self._unavailable_info(name, self._unavailable[name])
        return self._info(self.get(name))

    @staticmethod
    def _unavailable_info(name: str, reason: str) -> dict[str, Any]:
        return {"name": name, "status": "unavailable", "reason": reason}

    def _info(self, collection: Collection) -> dict[str, Any]:
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
        """Delete a collection and its files, all or nothing: a failure leaves it usable.

        Raises:
            NotFoundError: No such collection.
            StorageError: The folder could not be moved (the collection is unchanged).
        """
        self._check_writable(f"deleting collection {name!r}")
        with self._lock:
            if name in self._unavailable:
                self._writing(self._remove_folder, name)
                del self._unavailable[name]
                return
            collection = self.get(name)
            self._writing(collection.destroy)
            del self._collections[name]

    def _remove_folder(self, name: str) -> None:
        try:
            trash = move_to_trash(self.root / name)
        except OSError as exc:
            raise storage_error(f"deleting collection {name!r}", exc) from None
        empty_trash(trash)

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
        encoded = Encoded.concat(await self.batcher.encode_parts([d.text for d in docs]))
        over: list[int] = []
        if self.check_length is not None:
            over = self.check_length(encoded.lengths.tolist(), truncate, "documents")
        stored = await asyncio.to_thread(self._writing, collection.upsert, docs, encoded.vectors)
        return Upserted(stored, [stored[i] for i in over])

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
        if config.n_components and config.n_components > self.encoder.dimension:
            raise InputValidationError(
                f"whitening k={config.n_components} exceeds d={self.encoder.dimension}"
            )
        await asyncio.to_thread(self._writing, refit_whitening, collection, config)
        return self._info(collection)


def check_document_id(doc_id: str, where: str) -> None:
    """Refuse ids that a URL cannot carry to ``/documents/{id}``: empty or ``.`` / ``..`` parts
    between slashes (clients collapse them) and control characters.

    Raises:
        InputValidationError: Such an id.
    """
    if not _DOCUMENT_ID.fullmatch(doc_id):
        raise InputValidationError(
            f"{where} {doc_id!r} is not a reachable id: use printable text whose '/'-separated "
            "parts are neither empty nor '.' or '..'"
        )
