"""Similarity measures between sentence vectors (and later token-vector sequences)."""

from __future__ import annotations
