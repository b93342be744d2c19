"""Prometheus metrics of the model server, per model and version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
