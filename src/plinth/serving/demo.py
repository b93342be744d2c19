"""The serving step of ``plinth demo``: the champion wine model and a retrained challenger
deployed as a 90/10 canary with a shadow, served by a real ``plinth serve`` process over the
Open Inference Protocol, its requests read back from the inference log; then batch
inference over the wine dataset and, when Redis answers on 127.0.0.1:6379, streaming
inference from a Redis Stream."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from typing import Any

DEPLOYMENT = "wine"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _challenger(state: Any, model: str, c: float) -> tuple[str, Any]:
    """Another version of the model (another regularisation), registered beside the champion."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import plinth
    from plinth.registry.demo import _training_data

    with plinth.start_run(
        name=f"wine-logreg-c{c}", experiment="wine-demo", project=state.project, system_metrics=False
    ) as run:
        X, y, _source = _training_data(state, run.id)
        fitted = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(X, y)
        run.log_params({"model": "logistic_regression", "C": c})
        info = plinth.models.log_model(fitted, "model", input_example=X.head(5), registered_model_name=model)
    return f"models:/{model}/{info.registered_version.version}", X


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> float:
    import httpx

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"plinth serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("plinth serve did not become ready")


def _serve_and_call(state: Any, X: Any) -> None:
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "plinth", "serve", "--deployment", DEPLOYMENT, "--port", str(port)]
    command += ["--project", state.project]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        ready = _wait_ready(url, process)
        state.echo(f"  plinth serve --deployment {DEPLOYMENT}: ready in {ready:.1f} s at {url}/v2/models/{DEPLOYMENT}")
        versions: Counter[str] = Counter()
        rows = X.head(40)
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(len(rows)):
                row = rows.iloc[[i]]
                body = {
                    "inputs": [
                        {"name": c, "shape": [1], "datatype": "FP64", "data": [float(row[c].iloc[0])]}
                        for c in rows.columns
                    ]
                }
                answer = client.post(f"/v2/models/{DEPLOYMENT}/infer", json=body)
                answer.raise_for_status()
                versions[answer.json()["model_version"]] += 1
            bad = client.post(f"/v2/models/{DEPLOYMENT}/infer", json={"inputs": [{"name": "alcohol"}]})
        state.echo(f"  40 v2 infer requests answered by versions {dict(versions)} (90/10 canary)")
        state.echo(f"  a malformed request: {bad.status_code} {bad.json().get('error', '')[:90]}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _inference_log(state: Any) -> None:
    from deltalake import DeltaTable

    import plinth

    info = plinth.serving.inference_log_location(DEPLOYMENT, project=state.project)
    table = DeltaTable(info.location).to_pyarrow_table(columns=["version", "shadow"]).to_pandas()
    served = table[~table["shadow"]]["version"].value_counts().to_dict()
    shadowed = int(table["shadow"].sum())
    state.echo(f"  inference log (Delta): {len(table)} records, served by version {served}, {shadowed} shadowed")


def _batch(state: Any, model: str) -> None:
    import plinth

    dataset = state.facts.get("dataset")
    if not dataset:
        state.echo("  batch inference skipped: the data step made no dataset")
        return
    done = plinth.serving.predict_batch(
        f"models:/{model}@champion", dataset, "datasets:/wine_predictions", project=state.project
    )
    state.echo(
        f"  plinth predict: {done.rows} rows of {done.input} through {done.model} -> "
        f"datasets:/{done.output.dataset}/{done.output.version} ({done.rows_per_second:,.0f} rows/s, lineage to both)"
    )
    job = plinth.serving.list_batch_jobs(limit=1, project=state.project)[0]
    state.echo(
        f"  recorded as batch job {job.id} ({job.state}, {job.rows:,} rows, {job.seconds} s; "
        "the Serving page lists it; POST /api/v1/batch-jobs runs one on a server)"
    )


def _stream(state: Any, model: str, X: Any) -> None:
    """Streaming inference over a Redis Stream, when a Redis answers on 127.0.0.1:6379."""
    import json

    import plinth

    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
        client.ping()
    except Exception:  # noqa: BLE001 - the demo runs on a laptop without Redis too
        state.echo("  streaming inference skipped: no Redis on 127.0.0.1:6379 (plinth stream --source redis://…)")
        return
    source, sink = f"plinth-demo-in-{os.getpid()}", f"plinth-demo-out-{os.getpid()}"
    try:
        for record in X.head(20).to_dict(orient="records"):
            client.xadd(source, {"data": json.dumps(record)})
        stats = plinth.serving.stream_predict(
            f"models:/{model}@champion",
            f"redis://127.0.0.1:6379/{source}",
            f"redis://127.0.0.1:6379/{sink}",
            max_entries=20,
            project=state.project,
        )
        results = client.xrange(sink, count=3)
        first = {k.decode(): v.decode() for k, v in results[0][1].items()} if results else {}
        state.echo(
            f"  plinth stream: {stats.predicted} entries of Redis stream {source} scored, acknowledged after the "
            f"write; first result {first.get('prediction')} for source entry {first.get('source_id')}"
        )
        worker = plinth.serving.list_stream_workers(project=state.project)[0]
        state.echo(
            f"  stream worker {worker.consumer} registered: {worker.state}, consumed {worker.consumed}, "
            f"acked {worker.acked}, dead-lettered {worker.dead} (GET /api/v1/stream-workers)"
        )
    finally:
        client.delete(source, sink, f"{sink}:dead")


def run_step(state: Any) -> None:
    import yaml

    import plinth

    model = state.facts.get("model", "models:/wine-classifier@champion").split(":/", 1)[1].split("@")[0]
    champion = plinth.registry.resolve(f"models:/{model}@champion", project=state.project)
    challenger, X = _challenger(state, model, 0.05)
    shadow, _ = _challenger(state, model, 5.0)
    traffic = {f"models:/{model}/{champion.version}": 90, challenger: 10}
    existing = {d.name for d in plinth.serving.list_deployments(project=state.project)}
    resources = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    if DEPLOYMENT in existing:
        plinth.serving.update_deployment(
            DEPLOYMENT, models=traffic, shadow=shadow, resources=resources, project=state.project
        )
    else:
        plinth.serving.create_deployment(DEPLOYMENT, traffic, shadow, resources=resources, project=state.project)
    state.echo(f"  deployment {DEPLOYMENT!r}: {traffic}, shadow {shadow}")
    _serve_and_call(state, X)
    _inference_log(state)
    _batch(state, model)
    _stream(state, model, X)
    manifest = plinth.serving.export_manifests(
        plinth.serving.get_deployment(DEPLOYMENT, project=state.project), "kserve"
    )
    container = yaml.safe_load(manifest)["spec"]["predictor"]["containers"][0]
    state.echo(
        f"  manifests for a cluster: plinth deploy export {DEPLOYMENT} --target kserve "
        f"(an InferenceService; each replica asks for {container['resources']['requests']})"
    )
