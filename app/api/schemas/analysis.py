"""Collection analysis: compare and drift (Gaussian distances), clusters, duplicates."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.api.schemas.base import NAME_PATTERN, StrictBody


class CompareRequest(StrictBody):
    """The collection to compare with."""

    against: str = Field(pattern=NAME_PATTERN, description="Another collection's name.")


class GaussianDistancesOut(BaseModel):
    """Distances between Gaussians fitted to two sets of vectors, in the index's space
    (0: the same distribution; larger: further apart)."""

    w2: float = Field(description="2-Wasserstein (Fréchet) distance, >= 0.")
    kl: float = Field(description="KL divergence of the first set from the second, nats, >= 0.")
    bhattacharyya: float = Field(description="Bhattacharyya distance, >= 0, symmetric.")
    ridge: float = Field(
        description="Added to both covariances' diagonals for kl and "
        "bhattacharyya (rank-deficient covariances)."
    )
    n: int = Field(description="Vectors in the first set.")
    reference_n: int = Field(description="Vectors in the second set.")


class ClustersRequest(StrictBody):
    """How to cluster a collection's documents."""

    method: Literal["infomap", "threshold"] = Field(
        default="infomap",
        description="infomap: the map equation on the kNN graph (needs the optional infomap "
        "package; else threshold runs and `note` says so). threshold: sentence-transformers' "
        "community detection.",
    )
    k: int = Field(default=10, ge=1, le=100, description="Neighbours per document in the graph.")
    threshold: float = Field(
        default=0.75, ge=-1.0, le=1.0, description="Edges below this cosine are dropped."
    )
    min_size: int = Field(default=2, ge=1, description="Fewest documents in a reported cluster.")


class ClusterOut(BaseModel):
    """One cluster of documents."""

    id: int
    size: int
    members: list[str] = Field(description="Document ids.")
    representative: str | None = Field(
        description="The member closest to the cluster's mean direction."
    )


class ClustersOut(BaseModel):
    """Clusters, largest first."""

    method: str = Field(description="The method that ran.")
    clusters: list[ClusterOut]
    unclustered: int = Field(description="Documents in no cluster of min_size or more.")
    codelength: float | None = Field(
        description="InfoMap's description length of the partition, bits per step."
    )
    note: str | None = Field(default=None, description="Why another method ran.")


class DuplicatesRequest(StrictBody):
    """Paraphrase mining over a collection by kNN search (never all pairs)."""

    threshold: float = Field(default=0.9, ge=-1.0, le=1.0, description="Lowest cosine.")
    k: int = Field(default=10, ge=1, le=100, description="Neighbours searched per document.")
    limit: int = Field(default=1000, ge=1, le=100_000, description="Most pairs returned.")


class DuplicatePair(BaseModel):
    """Two documents and their cosine, in [-1, 1]."""

    a: str
    b: str
    score: float


class DuplicatesOut(BaseModel):
    """Duplicate pairs, highest cosine first."""

    pairs: list[DuplicatePair]
    total: int = Field(description="Pairs found (before limit).")
