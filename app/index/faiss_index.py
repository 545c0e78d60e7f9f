"""FaissIndex: L2-normalised vectors under int64 ids, searched by inner product (= cosine)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from app.core.errors import DimensionMismatchError, InputValidationError
from app.core.types import Embeddings

Ids = npt.NDArray[np.int64]

#: HNSW graph degree and search breadth for the ``hnsw`` spec (FAISS defaults: 32, 16).
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80


def _make(spec: str, d: int) -> faiss.Index:
    if spec == "flat":
        return faiss.IndexFlatIP(d)
    if spec == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_EF_SEARCH
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return index
    if "IDMap" in spec:
        raise InputValidationError(f"index spec {spec!r}: leave out IDMap, ids are added for you")
    try:
        return faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "invalid"
        raise InputValidationError(
            f"bad index spec {spec!r}: use 'flat', 'hnsw' or a FAISS index_factory string "
            f"such as 'HNSW32' or 'IVF64,Flat' ({first})"
        ) from None


def check_spec(spec: str, dimension: int) -> None:
    """Raise ``InputValidationError`` unless ``spec`` builds a FAISS index of ``dimension``."""
    _make(spec, dimension)


class FaissIndex:
    """A FAISS index (``IndexIDMap2`` over ``flat``, ``hnsw`` or a factory string).

    Vectors must be L2-normalised float32 (n, d); scores are inner products, i.e. cosine
    similarity in [-1, 1], higher is more similar. Indexes that need training (IVF, PQ) are
    trained by ``build`` on the vectors given; until enough vectors exist to train them, an
    exact flat index stands in (``exact_fallback``).

    Args:
        dimension: d.
        spec: ``flat`` (exact), ``hnsw`` (HNSW32, approximate) or a FAISS factory string.

    Raises:
        InputValidationError: The spec does not build.
    """

    def __init__(self, dimension: int, spec: str = "flat") -> None:
        self.dimension = dimension
        self.spec = spec
        self.exact_fallback = False
        self._index = faiss.IndexIDMap2(_make(spec, dimension))

    @classmethod
    def build(cls, dimension: int, spec: str, ids: Ids, vectors: Embeddings) -> FaissIndex:
        """A new index holding ``vectors`` under ``ids``, trained on them when it needs it."""
        index = cls(dimension, spec)
        if not index._index.is_trained:
            try:
                if len(vectors) == 0:
                    raise RuntimeError("nothing to train on")
                index._index.train(np.ascontiguousarray(vectors, dtype=np.float32))
            except RuntimeError:  # too few vectors to train on: exact search meanwhile
                index = cls(dimension, "flat")
                index.spec, index.exact_fallback = spec, True
        index.add(ids, vectors)
        return index

    @property
    def ntotal(self) -> int:
        """Number of vectors stored."""
        return int(self._index.ntotal)

    def ids(self) -> Ids:
        """The stored ids, int64 (ntotal,)."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: Ids, vectors: Embeddings) -> None:
        """Add float32 (n, d) L2-normalised vectors under int64 (n,) ids.

        Raises:
            DimensionMismatchError: The vectors are not (n, d) or ids and vectors differ in n.
        """
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dimension or len(x) != len(ids):
            raise DimensionMismatchError(
                f"index of d={self.dimension} got vectors {x.shape} for {len(ids)} ids"
            )
        if len(x):
            self._index.add_with_ids(x, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: Ids) -> bool:
        """Remove ids; ``False`` if this index type cannot remove (HNSW): the caller rebuilds
        or skips them at search time."""
        if len(ids) == 0:
            return True
        try:
            self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, np.int64)))
        except RuntimeError:
            return False
        return True

    def search(
        self, queries: Embeddings, top_k: int, allowed: Ids | None = None
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        """Nearest stored vectors of each query by inner product.

        Args:
            queries: float32 (q, d), L2-normalised.
            top_k: Neighbours per query.
            allowed: If given, only these ids may be returned (metadata filters).

        Returns:
            ``(scores, ids)``, each (q, top_k): cosine in [-1, 1] sorted descending, and ids;
            missing neighbours have id -1.
        """
        xq = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(top_k, self.ntotal))
        if allowed is None:
            D, I = self._index.search(xq, k)  # noqa: E741 (FAISS's names)
            return D.astype(np.float32), I.astype(np.int64)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        params: faiss.SearchParameters
        try:
            ivf = faiss.extract_index_ivf(self._index.index)
            params = faiss.SearchParametersIVF()
            params.nprobe = ivf.nlist  # a filter may leave few candidates per list: probe all
        except RuntimeError:  # not an IVF index
            params = faiss.SearchParameters()
        params.sel = selector
        try:
            D, I = self._index.search(xq, k, params=params)  # noqa: E741
        except RuntimeError:  # an index type without selector support: filter afterwards
            D, I = self._index.search(xq, self.ntotal)  # noqa: E741
            keep = np.isin(I, allowed)
            D = np.where(keep, D, -np.inf)
            order = np.argsort(-D, axis=1, kind="stable")[:, :k]
            D, I = np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)  # noqa: E741
            I[~np.isfinite(D)] = -1
        return D.astype(np.float32), I.astype(np.int64)

    def save(self, path: str | Path) -> None:
        """Write the index atomically: a temporary file beside ``path``, fsync, rename."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            faiss.write_index(self._index, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: str | Path, dimension: int, spec: str) -> FaissIndex | None:
        """Read a saved index; ``None`` if it is missing, unreadable or of another dimension
        (it is a cache: the caller rebuilds it from the store)."""
        try:
            raw = faiss.read_index(str(path))
        except RuntimeError:
            return None
        if raw.d != dimension or not isinstance(raw, faiss.IndexIDMap2):
            return None
        index = cls.__new__(cls)
        index.dimension, index.spec, index._index = dimension, spec, raw
        # A spec that needs training, saved while still on its flat stand-in.
        index.exact_fallback = not _make(spec, dimension).is_trained and isinstance(
            faiss.downcast_index(raw.index), faiss.IndexFlat
        )
        return index
