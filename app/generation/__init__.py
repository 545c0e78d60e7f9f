"""Paraphrase generation the SimBERT way (UniLM seq2seq + retrieval), on torch."""

from __future__ import annotations
