"""Prometheus metrics of the model server, per model and version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models_support import iris
from plinth.serving import ServingOptions, load_served


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_errors_latency_batches_and_queue(serve: Callable[..., Any], iris_folder: Path) -> None:
    running = serve([load_served(str(iris_folder))], ServingOptions(max_wait_ms=1))
    X, _ = iris()
    with running.client() as c:
        for _ in range(3):
            assert c.post("/models/iris/predict", json={"records": X.head(5).to_dict(orient="records")}).is_success
        assert c.post("/models/iris/predict", json={"records": [{"x": 1}]}).status_code == 400
        text = c.get("/metrics").text
    got = samples(text)
    iris_v1 = (("model", "iris"), ("version", "1"))

    def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return name, tuple(sorted({"model": "iris", "version": "1", **labels}.items()))

    assert got[key("plinth_serving_requests_total", endpoint="predict", status="200")] == 3
    assert got[key("plinth_serving_requests_total", endpoint="predict", status="400")] == 1
    assert got[key("plinth_serving_errors_total", kind="invalid_input")] == 1
    assert got[("plinth_serving_request_seconds_count", iris_v1)] == 4
    assert got[("plinth_serving_batch_rows_count", iris_v1)] == 3
    assert got[("plinth_serving_batch_rows_sum", iris_v1)] == 15
    assert got[("plinth_serving_queue_depth", iris_v1)] == 0


def test_request_counts_and_latency_buckets_are_exposed_as_prometheus_reads_them() -> None:
    from plinth.serving.metrics import ServingMetrics

    metrics = ServingMetrics()
    for seconds, status in ((0.0005, 200), (0.001, 200), (0.003, 200), (0.003, 400), (7.0, 500)):
        metrics.finished("iris", "1", "infer", status, seconds)
    metrics.finished("iris", "2", "shadow", 200, 0.02)
    labels = {"model": "iris", "version": "1"}
    value = metrics.registry.get_sample_value
    buckets = {
        le: value("plinth_serving_request_seconds_bucket", {**labels, "le": le})
        for le in ("0.001", "0.0025", "0.005", "5.0", "+Inf")
    }
    assert buckets == {"0.001": 2, "0.0025": 2, "0.005": 4, "5.0": 4, "+Inf": 5}  # le: upper bounds, inclusive
    assert value("plinth_serving_request_seconds_count", labels) == 5
    assert value("plinth_serving_request_seconds_sum", labels) == pytest.approx(7.0075)
    assert value("plinth_serving_requests_total", {**labels, "endpoint": "infer", "status": "200"}) == 3
    assert value("plinth_serving_requests_total", {**labels, "endpoint": "infer", "status": "500"}) == 1
    assert (
        value("plinth_serving_requests_total", {"model": "iris", "version": "2", "endpoint": "shadow", "status": "200"})
        == 1
    )
    assert value("plinth_serving_failed_request_seconds_total", labels) == pytest.approx(7.003)
    # the text a Prometheus server scrapes parses back into the same families
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert families["plinth_serving_requests"].type == "counter"
    assert families["plinth_serving_request_seconds"].type == "histogram"
