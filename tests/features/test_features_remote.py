"""Every door over HTTP: the remote SDK (PLINTH_URI), raw REST and the feature server route."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from features_support import CASES, T, definitions, driver_daily_rows, driver_stats_rows, entity_frame, write_source

import plinth
from plinth.core.errors import InvalidInput, PermissionDenied
from plinth.governance import service as gov
from tests_support import free_port_for_subprocess


def _nan_none(values: list[object]) -> list[object]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def test_remote_sdk_end_to_end(remote_sdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform = remote_sdk.platform
    stats_uri = write_source("parquet", driver_stats_rows(), tmp_path, platform, "stats")
    daily_uri = write_source("delta", driver_daily_rows(), tmp_path, platform, "daily")
    defs = definitions(stats_uri, daily_uri)
    objects = [defs["stats"], defs["daily"], defs["service"]]  # the entity comes along from the views
    assert plinth.features.plan(objects).summary() == {"create": 4}
    assert plinth.features.apply(objects).plan.summary() == {"create": 4}
    assert [v.name for v in plinth.features.list_feature_views()] == ["driver_daily", "driver_stats"]

    out = plinth.features.get_historical_features(
        entity_frame(), ["driver_stats:conv_rate", "driver_stats:trips", "driver_daily:rating"]
    )
    assert _nan_none(out.column("conv_rate").to_pylist()) == [c[2] for c in CASES]
    assert _nan_none(out.column("rating").to_pylist()) == [c[4] for c in CASES]
    df = plinth.features.get_historical_features(entity_frame(), feature_service=defs["service"], output="pandas")
    assert list(df.columns) == ["driver_id", "event_timestamp", "label", "conv_rate", "rating"]

    info = plinth.features.create_training_set("drivers_train", entity_frame(), features=defs["service"])
    assert info.dataset == "datasets:/drivers_train/1" and info.rows == len(CASES)
    assert info.feature_service == "driver_activity"

    result = plinth.features.materialize(T(0), T(23))
    assert sorted(w.view for w in result.writes) == ["driver_daily", "driver_stats"]
    pushed = plinth.features.push(
        "driver_stats",
        pd.DataFrame(
            {"driver_id": [9], "event_timestamp": [pd.Timestamp.now(tz="UTC")], "conv_rate": [0.9], "trips": [9]}
        ),
    )
    assert pushed.rows == 1 and pushed.offline.endswith(".parquet")
    online = plinth.features.get_online_features(
        ["driver_stats:trips", "driver_daily:rating"], [{"driver_id": 9}, {"driver_id": 1}]
    )
    assert online.features["trips"] == [9, None]  # driver 1's stats are days old: beyond the 2 h ttl
    assert online.statuses["trips"] == ["present", "expired"] and online.features["rating"] == [None, 4.0]

    catalog = plinth.features.search_features("conversion")
    assert [f.ref for f in catalog] == ["driver_stats:conv_rate"] and catalog[0].freshness is not None
    feature = plinth.features.get_feature("driver_stats:conv_rate")
    assert feature.usage is not None and feature.usage.training_sets == ["datasets:/drivers_train/1"]
    view = plinth.features.get_feature_view("driver_stats")
    assert [w.kind for w in view.writes] == ["push", "materialize"]
    assert {f.view for f in plinth.features.freshness()} == {"driver_daily", "driver_stats"}

    with pytest.raises(InvalidInput, match="did you mean 'driver_stats:trips'"):
        plinth.features.get_online_features(["driver_stats:trip"], [{"driver_id": 1}])
    with pytest.raises(InvalidInput, match="column 'trips' is string, but the feature is declared int64"):
        plinth.features.push(
            "driver_stats",
            pd.DataFrame({"driver_id": [9], "event_timestamp": [T(1)], "conv_rate": [0.1], "trips": ["x"]}),
        )


def test_rest_online_route_and_permissions(live_server, admin_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from plinth.features import service as svc
    from plinth.features.online import materialize

    platform = live_server.platform
    caller = platform.caller()
    uri = write_source("parquet", driver_stats_rows(), tmp_path, platform, "stats")
    defs = definitions(uri, uri)
    caller.call(svc.apply, objects=[defs["driver"].to_spec(), defs["stats"].to_spec()])
    caller.call(materialize, start=None, end=T(23))
    r = admin_client.post(
        "/features/online", json={"features": ["driver_stats:trips"], "entity_rows": [{"driver_id": 2}]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["entities"] == {"driver_id": [2]} and body["event_timestamps"]["driver_stats"] == [
        "2026-03-01T11:00:00Z"
    ]
    r = admin_client.post(
        "/features/online", json={"features": ["driver_stats:nope"], "entity_rows": [{"driver_id": 2}]}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    assert admin_client.post("/features/online", json={"features": ["driver_stats:trips"]}).status_code == 400

    caller.call(gov.create_user, name="erin")
    caller.call(gov.grant_role, user="erin", role="editor")
    erin = caller.call(gov.create_token, name="t", user="erin").token
    caller.call(gov.create_user, name="vic")
    caller.call(gov.grant_role, user="vic", role="viewer")
    vic = caller.call(gov.create_token, name="t", user="vic").token
    with live_server.client(erin) as c:
        spec = defs["stats"].to_spec()
        spec["ttl_seconds"] = 60.0
        r = c.post("/api/v1/features/apply", json={"objects": [spec]})
        assert r.status_code == 403 and "only a platform admin may apply a path source" in r.json()["error"]["message"]
    with live_server.client(vic) as c:
        r = c.post("/api/v1/features/apply", json={"objects": [defs["driver"].to_spec()]})
        assert r.status_code == 403
        assert (
            c.post(
                "/features/online", json={"features": ["driver_stats:trips"], "entity_rows": [{"driver_id": 2}]}
            ).status_code
            == 200
        )
    with live_server.client(None) as c:
        assert (
            c.post("/features/online", json={"features": ["driver_stats:trips"], "entity_rows": []}).status_code == 401
        )
    assert caller.call(svc.get_definition, kind="feature_view", name="driver_stats").version == 1
    with pytest.raises(PermissionDenied):
        from plinth.core.context import Actor, Grant

        platform.caller(Actor(name="erin", grants={"default": Grant("editor")})).call(svc.apply, objects=[spec])


def test_standalone_feature_server(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    import httpx
    import uvicorn

    from plinth.features import service as svc
    from plinth.features.online import materialize
    from plinth.features.server import create_feature_server

    uri = write_source("parquet", driver_stats_rows(), tmp_path, platform, "stats")
    defs = definitions(uri, uri)
    platform.caller().call(svc.apply, objects=[defs["driver"].to_spec(), defs["stats"].to_spec()])
    platform.caller().call(materialize, start=None, end=T(23))
    port = free_port_for_subprocess()
    server = uvicorn.Server(uvicorn.Config(create_feature_server(platform, auth=False), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.post("/features/online", json={"features": ["driver_stats:trips"], "entity_rows": {"driver_id": [1, 5]}})
    assert r.status_code == 200
    assert r.json()["statuses"]["trips"][1] == "not_found"
    r = client.post("/features/online", json={"features": "nope", "entity_rows": []})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    client.close()
    server.should_exit = True
    thread.join(timeout=10)
