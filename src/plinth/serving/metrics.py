"""Prometheus metrics of a model server, per model and version, on its own registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServingMetrics"]

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServingMetrics:
    """Requests, errors, latency, batch sizes and queue depth of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model", "version"]
        self.requests = Counter(
            "plinth_serving_requests", "Inference requests.", [*labels, "endpoint", "status"], registry=self.registry
        )
        self.errors = Counter(
            "plinth_serving_errors", "Failed inference requests.", [*labels, "kind"], registry=self.registry
        )
        self.latency = Histogram(
            "plinth_serving_request_seconds", "Inference latency.", labels, buckets=_LATENCY, registry=self.registry
        )
        self.batch_rows = Histogram(
            "plinth_serving_batch_rows", "Rows per model call.", labels, buckets=_ROWS, registry=self.registry
        )
        self.queue_depth = Gauge(
            "plinth_serving_queue_depth", "Requests waiting for a batch.", labels, registry=self.registry
        )
        self.failed_seconds = Counter(
            "plinth_serving_failed_request_seconds",
            "Time spent on inference requests that were refused or failed.",
            labels,
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "plinth_serving_log_dropped", "Inference log records dropped.", labels, registry=self.registry
        )

        self._finished: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}

    def finished(self, model: str, version: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (the labelled series are looked up once
        per label set, not per request)."""
        key = (model, version, endpoint, status)
        series = self._finished.get(key)
        if series is None:
            series = (self.latency.labels(model, version), self.requests.labels(model, version, endpoint, str(status)))
            self._finished[key] = series
        series[0].observe(seconds)
        series[1].inc()
        if status != 200:
            self.failed_seconds.labels(model, version).inc(seconds)

    def track_queue(self, model: str, version: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model, version).set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
