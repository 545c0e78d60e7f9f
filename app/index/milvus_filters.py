"""Metadata filters on the Milvus backend: an equality filter as a Milvus boolean expression,
and the exact check of each hit in Python.

Keys and string values are escaped as JSON string literals. Milvus compares JSON numbers and
booleans alike (``== 1`` also matches ``true``) and ``is null`` also matches a missing key, so
the expression lets through at least what ``DocumentStore.filter_seqs`` matches, and ``matches``
keeps exactly those (the collection searches deeper while too few remain).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from app.core.errors import InputValidationError
from app.index.store import Scalar


def _literal(value: Scalar) -> str:
    """A JSON scalar as a Milvus expression literal (strings escaped as JSON strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not np.isfinite(value):
            raise InputValidationError("filter values must be finite numbers")
        return repr(value)
    return json.dumps(value)


def filter_expression(filter: dict[str, Scalar] | None) -> str:
    """A metadata equality filter as a Milvus boolean expression that matches at least the
    documents ``DocumentStore.filter_seqs`` matches (see the module's note on exactness).

    Raises:
        InputValidationError: A value is not a JSON scalar.
    """
    clauses = []
    for key, value in (filter or {}).items():
        if isinstance(value, dict | list):
            raise InputValidationError(f"filter value of {key!r} must be a scalar")
        field = f"metadata[{json.dumps(key)}]"
        clauses.append(f"{field} is null" if value is None else f"{field} == {_literal(value)}")
    return " and ".join(clauses)


def matches(metadata: dict[str, Any], filter: dict[str, Scalar] | None) -> bool:
    """Whether metadata equals ``filter`` on every key, by JSON type and value (``1`` matches
    ``1`` and ``1.0``, not ``"1"`` or ``true``; ``None`` matches a stored null only)."""
    for key, value in (filter or {}).items():
        if key not in metadata:
            return False
        stored = metadata[key]
        if isinstance(value, bool) or isinstance(stored, bool) or value is None or stored is None:
            if type(stored) is not type(value) or stored != value:
                return False
        elif isinstance(value, int | float) != isinstance(stored, int | float) or stored != value:
            return False
    return True
