"""FaissIndex: L2-normalised vectors under int64 ids, searched by inner product (= cosine)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from app.core.errors import DimensionMismatchError, InputValidationError
from app.core.files import fsync_dir
from app.core.types import Embeddings

Ids = npt.NDArray[np.int64]

#: HNSW graph degree and search breadth for the ``hnsw`` spec (FAISS defaults: 32, 16).
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80


#: What ``index`` may be. Each form is exercised (train, add, search, filtered search, remove,
#: write, read) by tests/unit/index/test_index_specs.py; anything else is refused, since some
#: FAISS factory strings abort the process (``HNSW0``, ``PQ4x0``) or never finish training.
SPEC_GRAMMAR = "flat | hnsw | HNSW<M> | IVF<nlist>,Flat | IVF<nlist>,SQ8 | IVF<nlist>,PQ<m>[x<b>]"
#: The same grammar as a regular expression (numbers are range-checked by ``parse_spec``).
SPEC_PATTERN = (
    r"^(flat|Flat|hnsw|HNSW[0-9]{1,4}|IVF[0-9]{1,6},(Flat|SQ8|PQ[0-9]{1,4}(x[0-9]{1,2})?))$"
)
SPEC_BOUNDS = "4 <= M <= 256, 1 <= nlist <= 65536, 1 <= m <= 64 dividing d, 1 <= b <= 8"
_SPEC = re.compile(
    r"(?P<flat>flat|Flat)|(?P<hnsw>hnsw)|HNSW(?P<M>[0-9]{1,4})"
    r"|IVF(?P<nlist>[0-9]{1,6}),"
    r"(?:(?P<ivf_flat>Flat)|(?P<sq8>SQ8)|PQ(?P<m>[0-9]{1,4})(?:x(?P<b>[0-9]{1,2}))?)"
)


@dataclass(frozen=True)
class IndexSpec:
    """A parsed, range-checked index description.

    Attributes:
        factory: The FAISS ``index_factory`` string (``Flat``, ``HNSW32``, ``IVF64,PQ16x8``).
        min_train: Vectors needed before the index can be trained (0: needs no training).
    """

    factory: str
    min_train: int = 0


def parse_spec(spec: str, dimension: int) -> IndexSpec:
    """Check an index description against ``SPEC_GRAMMAR`` and its bounds.

    Args:
        spec: ``flat`` (exact), ``hnsw`` (HNSW32 with efSearch 128), ``HNSW<M>``, or an IVF
            form: ``IVF<nlist>,Flat``, ``IVF<nlist>,SQ8``, ``IVF<nlist>,PQ<m>[x<b>]``.
        dimension: d of the vectors.

    Returns:
        The FAISS factory string and how many vectors training needs.

    Raises:
        InputValidationError: The spec is outside the grammar or its bounds; the message
            lists what is accepted.
    """
    match = _SPEC.fullmatch(spec)

    def refuse(why: str) -> InputValidationError:
        return InputValidationError(
            f"index {spec!r} {why}; accepted: {SPEC_GRAMMAR} with {SPEC_BOUNDS} (d={dimension})"
        )

    if match is None:
        raise refuse("is not an accepted index description")
    if match["flat"]:
        return IndexSpec("Flat")
    if match["hnsw"]:
        return IndexSpec(f"HNSW{HNSW_M}")
    if match["M"] is not None:
        m_links = int(match["M"])
        if not 4 <= m_links <= 256:
            raise refuse(f"has M={m_links}")
        return IndexSpec(f"HNSW{m_links}")
    nlist = int(match["nlist"])
    if not 1 <= nlist <= 65536:
        raise refuse(f"has nlist={nlist}")
    if match["ivf_flat"] or match["sq8"]:
        return IndexSpec(f"IVF{nlist},{'Flat' if match['ivf_flat'] else 'SQ8'}", nlist)
    m, b = int(match["m"]), int(match["b"] or 8)
    if not 1 <= m <= 64 or dimension % m:
        raise refuse(f"has m={m}, which must be in [1, 64] and divide d={dimension}")
    if not 1 <= b <= 8:
        raise refuse(f"has b={b} bits per code")
    return IndexSpec(f"IVF{nlist},PQ{m}x{b}", max(nlist, 2**b))


def _make(spec: str, d: int) -> faiss.Index:
    factory = parse_spec(spec, d).factory
    if factory == "Flat":
        return faiss.IndexFlatIP(d)
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    if isinstance(index, faiss.IndexIVFPQ):
        # Polysemous codes serve Hamming-filtered search, which is not used here; training
        # them costs ~1.4 s per sub-quantizer (64 s for PQ64) whatever the corpus size.
        index.do_polysemous_training = False  # type: ignore[attr-defined]  # not in the stubs
    return index


class FaissIndex:
    """A FAISS index (``IndexIDMap2`` over one of the forms of ``SPEC_GRAMMAR``).

    Vectors must be L2-normalised float32 (n, d); scores are inner products, i.e. cosine
    similarity in [-1, 1], higher is more similar. Indexes that need training (IVF, PQ) are
    trained by ``build`` on the vectors given; until enough vectors exist to train them, an
    exact flat index stands in (``exact_fallback``).

    Args:
        dimension: d.
        spec: An index description (``parse_spec``): ``flat`` (exact), ``hnsw`` (HNSW32,
            approximate), ``IVF64,Flat``...

    Raises:
        InputValidationError: The spec is not accepted by ``parse_spec``.
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
                if len(vectors) < parse_spec(spec, dimension).min_train:
                    raise RuntimeError("too few vectors to train on")
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
        """Write the index atomically: a temporary file beside ``path``, fsync, rename.

        Raises:
            OSError: The file could not be written (disk full, read-only...); ``path`` is
                left as it was.
        """
        target = Path(path)
        data = faiss.serialize_index(self._index)  # in memory, so write errors are OSErrors
        fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data.tobytes())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        fsync_dir(target.parent)

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
