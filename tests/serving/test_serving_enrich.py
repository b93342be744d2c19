"""Feature-enriched serving: requests carry entity keys, the model's other inputs come from the
online store (a real feature repository applied and materialized to SQLite), over REST, the plain
endpoint and gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tritonclient.grpc as tgrpc
from test_serving_cli import start_serving, stop
from test_serving_deployments import plinth_cli
from tritonclient.utils import InferenceServerException

from plinth.core.platform import Platform
from plinth.serving import ServingOptions, load_served
from tests_support import free_port_for_subprocess, run_async

NOW = datetime.now(UTC).replace(microsecond=0)
# driver_id -> (conv_rate, trips); the label is trips > 5. Driver 7's only row is older than the ttl.
DRIVERS = {1: (0.9, 1), 2: (0.2, 2), 3: (0.7, 3), 4: (0.1, 10), 5: (0.8, 20), 6: (0.3, 30)}


@pytest.fixture
def feature_repo(platform: Platform, tmp_path: Path) -> Path:
    """A driver feature view on a Parquet source, applied, materialized; and a model trained on a
    point-in-time training set of it, saved as a folder."""
    import plinth
    from plinth.features import Entity, FeatureService, FeatureView, Field, Source
    from plinth.models.packaging import save_model

    ids = [*DRIVERS, 7]
    stamps = [NOW - timedelta(hours=1)] * len(DRIVERS) + [NOW - timedelta(days=10)]
    table = pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array([DRIVERS[i][0] for i in DRIVERS] + [0.5]),
            "trips": pa.array([DRIVERS[i][1] for i in DRIVERS] + [5], pa.int64()),
        }
    )
    source = tmp_path / "driver_stats"
    source.mkdir()
    pq.write_table(table, source / "part-0.parquet")
    driver = Entity(name="driver", join_keys=["driver_id"])
    stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        schema=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int64")],
        source=Source(str(source), timestamp_field="event_timestamp"),
        ttl=timedelta(days=2),
    )
    plinth.features.apply([driver, stats, FeatureService(name="driver_model", features=[stats])])
    plinth.features.materialize(None, NOW)

    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    entity_df = pd.DataFrame({"driver_id": list(DRIVERS), "event_timestamp": [NOW] * len(DRIVERS)})
    training = plinth.features.get_historical_features(
        entity_df, ["driver_stats:conv_rate", "driver_stats:trips"], output="pandas"
    )
    X = training[["conv_rate", "trips"]].astype("float64")  # a float signature: a null is a NaN the model takes
    model = HistGradientBoostingClassifier(min_samples_leaf=1, max_iter=20).fit(X, training["trips"] > 5)
    folder = tmp_path / "eta"
    save_model(model, folder, input_example=X.head(2))
    return folder


def predicted(folder: Path, rows: list[tuple[float | None, int | None]]) -> list[Any]:
    import pandas as pd

    from plinth.models import load

    frame = pd.DataFrame(rows, columns=["conv_rate", "trips"]).astype({"conv_rate": "float64", "trips": "float64"})
    return load(folder, trust=True).predict(frame).tolist()


def test_entity_keys_in_features_out_over_rest_plain_and_grpc(feature_repo: Path, serve: Callable[..., Any]) -> None:
    options = ServingOptions(features=("features:/driver_model",), grpc_port=0)
    running = serve([load_served(str(feature_repo), trust=True)], options)
    assert running.server.enricher.entity_keys == ["driver_id"]
    assert running.server.enricher.columns == ["conv_rate", "trips"]
    want = predicted(feature_repo, [DRIVERS[1], DRIVERS[5], DRIVERS[3]])
    assert want == [False, True, False]
    with running.client() as c:
        body = {"inputs": [{"name": "driver_id", "shape": [3], "datatype": "INT64", "data": [1, 5, 3]}]}
        r = c.post("/v2/models/eta/infer", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == want
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 1}, {"driver_id": 5}, {"driver_id": 3}]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want
        # a value the request carries wins over the store's: driver 1 with 100 trips
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 1, "trips": 100}]})
        assert r.json()["predictions"] == predicted(feature_repo, [(DRIVERS[1][0], 100)]) == [True]
    with tgrpc.InferenceServerClient(f"127.0.0.1:{running.server.grpc.port}") as client:
        keys = tgrpc.InferInput("driver_id", [3], "INT64")
        keys.set_data_from_numpy(np.array([1, 5, 3], dtype=np.int64))
        assert client.infer("eta", [keys]).as_numpy("output-0").tolist() == want

    async def concurrent() -> list[Any]:  # lookups from many requests at once, on the server's threads
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as c:
            bodies = [{"records": [{"driver_id": 1 + i % 6}]} for i in range(60)]
            return await asyncio.gather(*(c.post("/models/eta/predict", json=b) for b in bodies))

    answers = run_async(concurrent())
    by_driver = dict(zip(DRIVERS, predicted(feature_repo, list(DRIVERS.values())), strict=True))
    assert [r.json()["predictions"] for r in answers] == [[by_driver[1 + i % 6]] for i in range(60)]


def test_missing_entities_and_keys_are_refused_by_default(feature_repo: Path, serve: Callable[..., Any]) -> None:
    running = serve(
        [load_served(str(feature_repo), trust=True)], ServingOptions(features=("features:/driver_model",), grpc_port=0)
    )
    with running.client() as c:
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 1}, {"driver_id": 99}]})
        assert r.status_code == 404
        assert (
            r.json()["error"]
            == "no online value of feature 'conv_rate' for driver_id=99 (not_found: none was materialized)"
        )
        body = {"inputs": [{"name": "driver_id", "shape": [1], "datatype": "INT64", "data": [7]}]}
        r = c.post("/v2/models/eta/infer", json=body)
        assert r.status_code == 404
        assert (
            r.json()["error"]
            == "no online value of feature 'conv_rate' for driver_id=7 (expired: older than its view's ttl)"
        )
        r = c.post("/models/eta/predict", json={"records": [{"trips": 3}]})
        assert r.status_code == 400
        assert r.json()["error"] == "the request needs the entity key 'driver_id' to look up conv_rate"
        metrics = c.get("/metrics").text
    assert 'plinth_serving_errors_total{kind="not_found",model="eta",version="1"} 2.0' in metrics
    assert 'plinth_serving_batch_rows_count{model="eta",version="1"} 0.0' in metrics  # the model was never called
    with tgrpc.InferenceServerClient(f"127.0.0.1:{running.server.grpc.port}") as client:
        keys = tgrpc.InferInput("driver_id", [1], "INT64")
        keys.set_data_from_numpy(np.array([99], dtype=np.int64))
        with pytest.raises(InferenceServerException) as info:
            client.infer("eta", [keys])
    assert info.value.status() == "StatusCode.NOT_FOUND"
    assert (
        info.value.message()
        == "no online value of feature 'conv_rate' for driver_id=99 (not_found: none was materialized)"
    )


def test_missing_entities_served_as_nulls_when_asked(feature_repo: Path, serve: Callable[..., Any]) -> None:
    """With ``missing_features="null"`` the model gets the online store's nulls (this one takes them)."""
    options = ServingOptions(features=("driver_stats:conv_rate,driver_stats:trips",), missing_features="null")
    running = serve([load_served(str(feature_repo), trust=True)], options)
    with running.client() as c:
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 4}, {"driver_id": 99}]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == predicted(feature_repo, [DRIVERS[4], (None, None)])


def test_bad_feature_references_fail_before_serving(feature_repo: Path, tmp_path: Path) -> None:
    from plinth.core.errors import InvalidInput, NotFound
    from plinth.serving.enrich import FeatureEnricher, parse_feature_refs

    home = tmp_path / "home"
    out = plinth_cli(home, "serve", str(feature_repo), "--trust", "--features", "driver_stats:speed")
    assert out.exit_code == 2 and "unknown feature 'driver_stats:speed' (no feature of that name)" in out.output
    out = plinth_cli(home, "serve", str(feature_repo), "--trust", "--features", "driver_stats")
    assert out.exit_code == 2
    assert "'driver_stats' is neither a feature service (features:/NAME) nor a feature reference" in out.output
    with pytest.raises(NotFound, match="feature_service 'nope'|'nope'"):
        FeatureEnricher(["features:/nope"]).resolve()
    with pytest.raises(InvalidInput, match="missing must be one of error, null, got 'zero'"):
        FeatureEnricher(["driver_stats:trips"], missing="zero").resolve()
    with pytest.raises(InvalidInput, match="give one feature service"):
        parse_feature_refs(["features:/driver_model", "driver_stats:trips"])
    assert parse_feature_refs(["driver_stats:trips, driver_stats:conv_rate"]) == (
        ["driver_stats:trips", "driver_stats:conv_rate"],
        None,
    )


def test_plinth_serve_with_features_end_to_end(feature_repo: Path, tmp_path: Path) -> None:
    """``plinth serve --features`` in its own process, on the platform the repository was applied to."""
    grpc_port = free_port_for_subprocess()
    args = (str(feature_repo), "--trust", "--features", "features:/driver_model", "--grpc-port", str(grpc_port))
    proc, c = start_serving(tmp_path / "home", *args)
    try:
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 4}, {"driver_id": 2}]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == predicted(feature_repo, [DRIVERS[4], DRIVERS[2]])
        with tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
            keys = tgrpc.InferInput("driver_id", [1], "INT64")
            keys.set_data_from_numpy(np.array([99], dtype=np.int64))
            with pytest.raises(
                InferenceServerException, match="no online value of feature 'conv_rate' for driver_id=99"
            ):
                client.infer("eta", [keys])
    finally:
        c.close()
        out = stop(proc)
    assert "filling conv_rate, trips from the online store by driver_id" in out


def test_a_deployment_carries_its_features_through_every_door(  # type: ignore[no-untyped-def]
    feature_repo: Path, platform: Platform, tmp_path: Path, live_server
) -> None:
    """``features`` stored with the deployment: checked at create and update (nothing written when
    refused), shown by the CLI, REST and the page, and used by ``plinth serve --deployment``."""
    import json

    import pandas as pd
    from sqlalchemy import func, select

    import plinth
    from models_support import log_with_services
    from plinth.core.errors import InvalidInput, NotFound
    from plinth.models import load
    from plinth.registry import service as registry
    from plinth.serving.tables import Deployment
    from plinth.store.events import Event

    example = pd.DataFrame({"conv_rate": [0.1, 0.2], "trips": [1.0, 2.0]})
    source = log_with_services(platform, load(feature_repo, trust=True).raw, input_example=example)
    platform.caller().call(registry.register_version, name="eta", source=source)

    def written() -> tuple[int, int]:
        with platform.db.session() as session:
            return (
                session.execute(select(func.count()).select_from(Deployment)).scalar_one(),
                session.execute(select(func.count()).select_from(Event)).scalar_one(),
            )

    before = written()
    with pytest.raises(NotFound, match="'nope'"):
        plinth.serving.create_deployment("eta", "models:/eta/1", features="features:/nope")
    with pytest.raises(InvalidInput, match="unknown feature 'driver_stats:speed' \\(no feature of that name\\)"):
        plinth.serving.create_deployment("eta", "models:/eta/1", features=["driver_stats:speed"])
    with pytest.raises(InvalidInput, match="missing_features must be one of error, null, not 'zero'"):
        plinth.serving.create_deployment(
            "eta", "models:/eta/1", features="features:/driver_model", missing_features="zero"
        )
    assert written() == before

    made = plinth.serving.create_deployment("eta", "models:/eta/1", features="features:/driver_model")
    assert (made.features, made.missing_features) == (["features:/driver_model"], "error")
    changed = plinth.serving.update_deployment(
        "eta", features=["driver_stats:conv_rate, driver_stats:trips"], missing_features="null"
    )
    assert (changed.features, changed.missing_features) == (["driver_stats:conv_rate", "driver_stats:trips"], "null")
    with pytest.raises(InvalidInput, match="unknown feature 'driver_stats:speed'"):
        plinth.serving.update_deployment("eta", features="driver_stats:speed")
    assert plinth.serving.get_deployment("eta").features == changed.features  # the refused update wrote nothing
    assert plinth.serving.update_deployment("eta", clear_features=True).features is None

    home = tmp_path / "home"
    args = ("--features", "features:/driver_model", "--missing-features", "error", "--json")
    out = plinth_cli(home, "deploy", "update", "eta", *args)
    assert out.exit_code == 0, out.output
    assert (json.loads(out.output)["features"], json.loads(out.output)["missing_features"]) == (
        ["features:/driver_model"],
        "error",
    )
    out = plinth_cli(home, "deploy", "list", "--json")
    assert out.exit_code == 0 and json.loads(out.output)[0]["features"] == ["features:/driver_model"]
    out = plinth_cli(home, "deploy", "get", "eta")
    assert out.exit_code == 0 and "features:/driver_model" in out.output and "missing_features" in out.output
    with live_server.client(live_server.admin_token) as c:
        assert c.get("/api/v1/deployments/eta").json()["features"] == ["features:/driver_model"]
        r = c.patch("/api/v1/deployments/eta", json={"features": "features:/nope"})
        assert r.status_code == 404 and "'nope'" in r.json()["error"]["message"]
        page = c.get("/serving").text
    assert '<code>features:/driver_model</code> <span class="muted">(missing: error)</span>' in page

    # served: a request carrying only the entity key gets its features from the online store
    refused = plinth_cli(home, "serve", "--deployment", "eta", "--trust", "--features", "driver_stats:trips")
    assert refused.exit_code == 2 and "deployment 'eta' carries its features (features:/driver_model)" in refused.output
    proc, c = start_serving(home, "--deployment", "eta", "--trust")
    try:
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 4}, {"driver_id": 2}]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == predicted(feature_repo, [DRIVERS[4], DRIVERS[2]])
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 99}]})
        assert r.status_code == 404 and "no online value of feature 'conv_rate' for driver_id=99" in r.json()["error"]
    finally:
        c.close()
        out_text = stop(proc)
    assert "filling conv_rate, trips from the online store by driver_id" in out_text


def test_a_served_deployment_follows_a_change_of_its_features(
    feature_repo: Path, platform: Platform, serve: Callable[..., Any]
) -> None:
    """``plinth deploy update --features`` reaches a running server: the new lookup is resolved and
    swapped in (no restart); features it cannot resolve leave the old lookup and mark the failure."""
    import time

    import pandas as pd

    import plinth
    from models_support import log_with_services
    from plinth.models import load
    from plinth.registry import service as registry
    from plinth.serving import load_deployment

    example = pd.DataFrame({"conv_rate": [0.1, 0.2], "trips": [1.0, 2.0]})
    source = log_with_services(platform, load(feature_repo, trust=True).raw, input_example=example)
    platform.caller().call(registry.register_version, name="eta", source=source)
    plinth.serving.create_deployment("eta", "models:/eta/1")
    running = serve([load_deployment("eta", trust=True)])  # no features yet
    follower = running.server.follow(poll_interval=0.05, deployment="eta", trust=True)
    keys_only = {"records": [{"driver_id": 4}, {"driver_id": 2}]}
    with running.client() as c:
        r = c.post("/models/eta/predict", json=keys_only)
        assert r.status_code == 400 and "conv_rate" in r.json()["error"]  # nothing fills the features
        plinth.serving.update_deployment("eta", features="features:/driver_model")
        deadline = time.monotonic() + 30
        while running.server.enricher is None:
            assert time.monotonic() < deadline, "the new features never reached the server"
            time.sleep(0.02)
        r = c.post("/models/eta/predict", json=keys_only)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == predicted(feature_repo, [DRIVERS[4], DRIVERS[2]])
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 99}]})
        assert r.status_code == 404  # missing_features "error", as the deployment says
        plinth.serving.update_deployment("eta", missing_features="null")
        while running.server.enricher.missing != "null":
            assert time.monotonic() < deadline, "the missing_features change never reached the server"
            time.sleep(0.02)
        r = c.post("/models/eta/predict", json={"records": [{"driver_id": 4}, {"driver_id": 99}]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == predicted(feature_repo, [DRIVERS[4], (None, None)])
        plinth.serving.update_deployment("eta", clear_features=True)
        while running.server.enricher is not None:
            assert time.monotonic() < deadline, "clearing the features never reached the server"
            time.sleep(0.02)
        assert c.post("/models/eta/predict", json=keys_only).status_code == 400
    assert follower.failures == []
