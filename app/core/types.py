"""Array type aliases shared by the ML packages."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

#: float32 array of shape (n, d): one sentence vector per row.
Embeddings: TypeAlias = npt.NDArray[np.float32]
#: float64 array of shape (n,) or (n, d): statistics kept in double precision.
Float64Array: TypeAlias = npt.NDArray[np.float64]
