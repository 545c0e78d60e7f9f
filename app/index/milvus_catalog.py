"""``MilvusCatalog``: the collections of the ``milvus`` backend, as the registry of a Milvus
Lite file or server lists them (a ``CollectionCatalog``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pymilvus import MilvusClient, MilvusException
from safetensors.numpy import load as load_tensors

from app.core.errors import ConflictError, NotFoundError, StorageError
from app.index.base import ResolveTransform, VectorTransform
from app.index.milvus_collection import MilvusCollection
from app.index.milvus_physical import make_physical, physical_name, storage_error
from app.index.milvus_registry import (
    drop_blob,
    ensure_bookkeeping,
    load_blob,
    lookup,
    register,
    registered,
    unregister,
)
from app.transforms.whitening import Whitening

T = TypeVar("T")


def create_collection(
    client: MilvusClient, meta: dict[str, Any], transform: VectorTransform | None = None
) -> MilvusCollection:
    """Create the collection and register it (the registry row is the switch point).

    Raises:
        ConflictError: The name is taken.
        InputValidationError: The index description is not accepted here.
        StorageError: Milvus refused.
    """
    name = str(meta["name"])
    try:
        if lookup(client, name) is not None:
            raise ConflictError(f"collection {name!r} already exists")
        made = MilvusCollection(client, dict(meta), physical_name(name), transform)
        make_physical(
            client, made.physical, int(meta["dimension"]), made.vector_dimension, meta["index"]
        )
        try:
            register(client, name, made.physical, made.meta)
            winner = lookup(client, name)
        except BaseException:
            client.drop_collection(made.physical)  # no orphan left behind
            raise
        if winner is None or winner[0] != made.physical:  # another replica's create won
            client.drop_collection(made.physical)
            raise ConflictError(f"collection {name!r} already exists")
    except MilvusException as exc:
        raise storage_error(f"creating collection {name!r}", exc) from None
    return made


def open_collection(
    client: MilvusClient, name: str, transform: VectorTransform | None = None
) -> MilvusCollection:
    """The registered collection ``name``, with ``transform`` or else its own whitening.

    Raises:
        NotFoundError: No collection has this name.
    """
    found = lookup(client, name)
    if found is None:
        raise NotFoundError(f"collection {name!r} does not exist")
    return open_registered(client, *found, transform)


def open_registered(
    client: MilvusClient,
    physical: str,
    meta: dict[str, Any],
    transform: VectorTransform | None,
) -> MilvusCollection:
    """The collection a registry row describes, loaded, with its own whitening if
    ``transform`` is ``None`` and it has one."""
    name = str(meta["name"])
    client.load_collection(physical)  # Milvus releases collections when it restarts
    if transform is None and meta.get("whitening_blob"):
        data = load_blob(client, meta["whitening_blob"])
        if data is None:
            raise NotFoundError(f"the whitening of collection {name!r} is missing")
        transform = Whitening.from_tensors(meta["whitening_metadata"], load_tensors(data))
    return MilvusCollection(client, meta, physical, transform)


class MilvusCatalog:
    """The collections of the ``milvus`` backend: the registry of a Milvus Lite file or server
    (see ``CollectionCatalog``). ``shared``: other replicas may change it at any time.

    Args:
        uri: A Milvus Lite file path (its folder is created) or a server URL.
        token: The server's token, if it needs one.
    """

    shared = True

    def __init__(self, uri: str, token: str | None = None) -> None:
        self.uri, self.token = uri, token
        self.read_only: str | None = None
        self._client: MilvusClient | None = None

    @property
    def client(self) -> MilvusClient:
        """The connection (``start`` opens it)."""
        if self._client is None:
            raise NotFoundError("the Milvus catalog is not started")
        return self._client

    def start(self) -> None:
        """Connect and create the registry if missing.

        Raises:
            StorageError: Milvus cannot be reached or refused (the message says which).
        """
        if self._client is not None:
            return
        is_file = "://" not in self.uri
        if is_file:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client = MilvusClient(uri=self.uri, token=self.token or "")
            ensure_bookkeeping(self._client)
        except MilvusException as exc:
            raise storage_error("connecting to Milvus", exc) from None
        except Exception as exc:  # grpc and Milvus Lite start-up failures
            where = "the Milvus Lite file" if is_file else "the Milvus server"
            raise StorageError(
                f"connecting to {where} (SENTSIM_MILVUS_URI) failed ({type(exc).__name__}); "
                "check it is reachable (a Milvus Lite file opens in one process only)"
            ) from None

    def names(self) -> list[str]:
        """The registered collections, sorted."""
        return sorted(self._call("listing collections", registered, self.client))

    def revision(self, name: str) -> str | None:
        """The physical collection ``name`` points at (new on every re-create and refit)."""
        found = self._call(f"reading collection {name!r}", lookup, self.client, name)
        return None if found is None else found[0]

    def open(self, name: str, resolve: ResolveTransform) -> MilvusCollection:
        """``open_collection`` with the named transform ``resolve`` returns, if any."""
        found = self._call(f"opening collection {name!r}", lookup, self.client, name)
        if found is None:
            raise NotFoundError(f"collection {name!r} does not exist")
        transform = resolve(found[1])
        return self._call(
            f"opening collection {name!r}",
            open_registered,  # the row just read, not read again
            self.client,
            *found,
            transform,
        )

    def create(self, meta: dict[str, Any], transform: VectorTransform | None) -> MilvusCollection:
        """``create_collection``."""
        return create_collection(self.client, meta, transform)

    def remove(self, name: str) -> None:
        """Unregister a collection that could not be opened and drop its data."""
        found = self._call(f"deleting collection {name!r}", lookup, self.client, name)
        if found is None:
            return
        self._call(f"deleting collection {name!r}", unregister, self.client, name)
        self._call(f"deleting collection {name!r}", self.client.drop_collection, found[0])
        self._call(f"deleting collection {name!r}", drop_blob, self.client, found[0])

    def close(self) -> None:
        """Close the connection."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @staticmethod
    def _call(what: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except MilvusException as exc:
            raise storage_error(what, exc) from None
