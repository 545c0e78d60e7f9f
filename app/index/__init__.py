"""Vector indexes (FAISS) and the document store (SQLite) behind collections."""

from __future__ import annotations
