"""Health."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    """Component status. ``degraded`` (still HTTP 200, so a load balancer keeps sending reads
    and embeddings): collections are read-only or unavailable, or a write failed; ``reasons``
    says which and why."""

    status: Literal["ok", "degraded", "unavailable"]
    model: str
    store: str
    reasons: list[str] = Field(default_factory=list)
