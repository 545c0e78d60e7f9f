"""Evaluation metrics on labelled sentence pairs (DESIGN.md §7)."""

from __future__ import annotations
