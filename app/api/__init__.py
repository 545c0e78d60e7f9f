"""The HTTP API (FastAPI): routes, schemas, dependencies and the one error table."""

from __future__ import annotations
