"""Prometheus metrics of a model server, per model and version, on its own registry."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

__all__ = ["ServingMetrics"]

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class _Requests:
    """``plinth_serving_requests_total`` and ``plinth_serving_request_seconds``: counted in plain
    Python numbers on the server's event loop (every request is counted there) and handed to
    Prometheus when it collects; a prometheus_client Counter and Histogram take a lock per
    update, several times the cost on a request path of a few tens of microseconds."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str, int], int] = {}
        # per (model, version): a count per latency bucket, the last one +Inf, then the sum
        self.latency: dict[tuple[str, str], list[float]] = {}

    def add(self, model: str, version: str, endpoint: str, status: int, seconds: float) -> None:
        key = (model, version, endpoint, status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        cells = self.latency.get((model, version))
        if cells is None:
            cells = self.latency[(model, version)] = [0] * (len(_LATENCY) + 1) + [0.0]
        cells[bisect_left(_LATENCY, seconds)] += 1  # the first bucket whose bound is >= seconds
        cells[-1] += seconds

    def collect(self) -> Any:
        requests = CounterMetricFamily(
            "plinth_serving_requests", "Inference requests.", labels=["model", "version", "endpoint", "status"]
        )
        for (model, version, endpoint, status), n in list(self.counts.items()):
            requests.add_metric([model, version, endpoint, str(status)], n)
        seconds = HistogramMetricFamily(
            "plinth_serving_request_seconds", "Inference latency.", labels=["model", "version"]
        )
        bounds = [*(str(b) for b in _LATENCY), "+Inf"]
        for (model, version), cells in list(self.latency.items()):
            total, buckets = 0.0, []
            for bound, n in zip(bounds, cells[:-1], strict=True):
                total += n
                buckets.append((bound, total))
            seconds.add_metric([model, version], buckets, sum_value=cells[-1])
        yield requests
        yield seconds


class ServingMetrics:
    """Requests, errors, latency, batch sizes and queue depth of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model", "version"]
        self.requests = _Requests()  # with the latency histogram: see _Requests
        self.registry.register(self.requests)
        self.errors = Counter(
            "plinth_serving_errors", "Failed inference requests.", [*labels, "kind"], registry=self.registry
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

    def finished(self, model: str, version: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.add(model, version, endpoint, status, seconds)
        if status != 200:
            self.failed_seconds.labels(model, version).inc(seconds)

    def track_queue(self, model: str, version: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model, version).set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
