"""Prometheus metrics of one service instance (its own registry, so several apps can coexist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram


class Metrics:
    """Request latency, model batch sizes and queue depth.

    Attributes:
        registry: The registry ``GET /metrics`` exposes.
        request_latency: Seconds per HTTP request, by method, route template and status.
        batch_size: Sentences per model call made by the micro-batcher.
        queue_depth: Requests waiting for the model.
        query_drift_w2: Per collection, the 2-Wasserstein distance of its recent queries from
            its documents, as last read by ``GET /collections/{name}/drift``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "sentsim_request_duration_seconds",
            "HTTP request latency in seconds.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "sentsim_batch_size_sentences",
            "Sentences per model call.",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        self.queue_depth = Gauge(
            "sentsim_queue_depth_requests",
            "Requests waiting for the model.",
            registry=self.registry,
        )
        self.query_drift_w2 = Gauge(
            "sentsim_query_drift_w2",
            "2-Wasserstein distance of a collection's recent queries from its documents.",
            ["collection"],
            registry=self.registry,
        )
