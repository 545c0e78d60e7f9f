"""Corrections of the sentence-vector distribution: BERT-whitening (and later BERT-flow)."""

from __future__ import annotations
